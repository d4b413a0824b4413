import { ConfigError, GatewayConfig, loadConfig } from '@lib/config';
import { checkRedis, RedisUnavailableError } from './redis-connection';

/**
 * The first thing every process does: validate the configuration and reach Redis, or print
 * what is wrong and how to fix it in a few lines and exit 1 (no stack trace).
 */
export async function loadConfigAndRedisOrExit(role: string): Promise<GatewayConfig> {
  let config: GatewayConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) exitWith(`[${role}] ${err.message}`);
    throw err;
  }
  try {
    const { warnings } = await checkRedis(config);
    for (const warning of warnings) process.stderr.write(`[${role}] warning: ${warning}\n`);
  } catch (err) {
    if (err instanceof RedisUnavailableError) exitWith(`[${role}] ${err.message}`);
    throw err;
  }
  return config;
}

function exitWith(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
