import { Controller, Get, Logger, Provider } from '@nestjs/common';
import { GatewayConfig } from '@lib/config';
import { PluginCatalog, PluginInfo } from '@lib/plugins';

/**
 * The plugin catalog of the API: manifests only (no plugin code runs in the API), read once at
 * start-up; a broken plugin is logged by name and the others load.
 */
export function pluginCatalogProvider(config: GatewayConfig): Provider {
  return {
    provide: PluginCatalog,
    useFactory: () => {
      const catalog = PluginCatalog.load(config);
      const logger = new Logger('Plugins');
      for (const broken of catalog.broken) logger.error(`plugin ${broken.name} (${broken.dir}) not loaded: ${broken.problems.join('; ')}`);
      return catalog;
    },
  };
}

@Controller('v1/inference/plugins')
export class PluginsController {
  constructor(private readonly catalog: PluginCatalog) {}

  /** Every plugin requests can name: inference names, feature URIs, dimensions, input and parameter schemas. */
  @Get()
  list(): { plugins: PluginInfo[] } {
    return { plugins: this.catalog.describe() };
  }
}
