export type MediaErrorCode =
  | 'url_not_allowed'
  | 'media_too_large'
  | 'media_download_failed'
  | 'media_download_timeout'
  | 'media_unreadable'
  | 'invalid_base64'
  | 'media_no_audio'
  | 'media_no_video'
  | 'media_truncated';

/**
 * A problem with a media input that is reported to the API client as is, so the message must be
 * understandable without server context and must never contain credentials (URLs are printed
 * without userinfo, query string or fragment).
 */
export class MediaError extends Error {
  constructor(
    message: string,
    readonly code: MediaErrorCode,
    readonly retryable: boolean = false,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'MediaError';
  }
}
