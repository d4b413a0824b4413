import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'gw:isPublic';

/** Marks a route that needs no API key (health checks). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);
