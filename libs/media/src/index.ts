export * from './media-error';
export * from './ip-policy';
export * from './mime-sniff';
export * from './base64-media';
export * from './safe-download';
