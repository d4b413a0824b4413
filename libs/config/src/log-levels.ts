import type { LogLevel } from '@nestjs/common';
import { GatewayConfig } from './gateway-config';

/** Nest's logger levels for LOG_LEVEL (each level includes the ones above it). */
export function logLevels(level: GatewayConfig['logLevel']): LogLevel[] {
  const all: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];
  return all.slice(0, all.indexOf(level) + 1);
}
