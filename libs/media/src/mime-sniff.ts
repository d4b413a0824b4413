interface SniffedMedia {
  mime: string;
  ext: string;
}

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis']);
const HEIF_GENERIC_BRANDS = new Set(['mif1', 'msf1']);
const M4A_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ']);
const BMP_DIB_HEADER_SIZES = new Set([12, 16, 40, 52, 56, 64, 108, 124]);

function ascii(head: Buffer, start: number, end: number): string {
  return head.length >= end ? head.toString('latin1', start, end) : '';
}

function bytesAre(head: Buffer, offset: number, bytes: number[]): boolean {
  if (head.length < offset + bytes.length) return false;
  return bytes.every((b, i) => head[offset + i] === b);
}

/** ISO base media file (ftyp box): HEIC/AVIF images, MP4/M4A/MOV. */
function sniffFtyp(head: Buffer): SniffedMedia | undefined {
  if (ascii(head, 4, 8) !== 'ftyp' || head.length < 12) return undefined;
  const major = ascii(head, 8, 12);
  const boxSize = head.readUInt32BE(0);
  const end = Math.min(head.length, boxSize >= 16 ? boxSize : head.length);
  const compatible: string[] = [];
  for (let i = 16; i + 4 <= end; i += 4) compatible.push(ascii(head, i, i + 4));

  if (AVIF_BRANDS.has(major)) return { mime: 'image/avif', ext: 'avif' };
  if (HEIC_BRANDS.has(major)) return { mime: 'image/heic', ext: 'heic' };
  if (HEIF_GENERIC_BRANDS.has(major)) {
    if (compatible.some((b) => AVIF_BRANDS.has(b))) return { mime: 'image/avif', ext: 'avif' };
    return { mime: 'image/heic', ext: 'heic' };
  }
  if (M4A_BRANDS.has(major)) return { mime: 'audio/mp4', ext: 'm4a' };
  if (major === 'qt  ') return { mime: 'video/quicktime', ext: 'mov' };
  return { mime: 'video/mp4', ext: 'mp4' };
}

/** MPEG audio frame header (layer I/II/III) with sane version, layer, bitrate and sample-rate fields. */
function isMpegAudioFrame(head: Buffer): boolean {
  if (head.length < 3 || head[0] !== 0xff || (head[1] & 0xe0) !== 0xe0) return false;
  const version = (head[1] >> 3) & 0x03; // 01 is reserved
  const layer = (head[1] >> 1) & 0x03; // 00 is reserved (and used by ADTS)
  const bitrate = head[2] >> 4; // 1111 is invalid
  const sampleRate = (head[2] >> 2) & 0x03; // 11 is reserved
  return version !== 1 && layer !== 0 && bitrate !== 0x0f && sampleRate !== 0x03;
}

/**
 * Identifies a media file from its first bytes (up to 64 are looked at). Content types sent by
 * servers or clients are never trusted; this is the only source of the MIME type.
 */
export function sniffMedia(head: Buffer): SniffedMedia | undefined {
  const b = head.subarray(0, 64);
  if (b.length < 2) return undefined;

  if (bytesAre(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { mime: 'image/png', ext: 'png' };
  if (bytesAre(b, 0, [0xff, 0xd8, 0xff])) return { mime: 'image/jpeg', ext: 'jpg' };
  const six = ascii(b, 0, 6);
  if (six === 'GIF87a' || six === 'GIF89a') return { mime: 'image/gif', ext: 'gif' };

  if (ascii(b, 0, 4) === 'RIFF') {
    const form = ascii(b, 8, 12);
    if (form === 'WEBP') return { mime: 'image/webp', ext: 'webp' };
    if (form === 'WAVE') return { mime: 'audio/wav', ext: 'wav' };
    if (form === 'AVI ') return { mime: 'video/x-msvideo', ext: 'avi' };
    return undefined;
  }

  if (bytesAre(b, 0, [0x49, 0x49, 0x2a, 0x00]) || bytesAre(b, 0, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { mime: 'image/tiff', ext: 'tiff' };
  }
  if (ascii(b, 0, 2) === 'BM' && b.length >= 18 && BMP_DIB_HEADER_SIZES.has(b.readUInt32LE(14))) {
    return { mime: 'image/bmp', ext: 'bmp' };
  }

  const ftyp = sniffFtyp(b);
  if (ftyp) return ftyp;

  if (bytesAre(b, 0, [0x1a, 0x45, 0xdf, 0xa3])) return { mime: 'video/webm', ext: 'webm' };
  const four = ascii(b, 0, 4);
  if (four === 'OggS') return { mime: 'audio/ogg', ext: 'ogg' };
  if (four === 'fLaC') return { mime: 'audio/flac', ext: 'flac' };
  if (ascii(b, 0, 3) === 'ID3') return { mime: 'audio/mpeg', ext: 'mp3' };

  // ADTS AAC: 12-bit sync, layer 00 (FFF1 = MPEG-4 without CRC, FFF9 = MPEG-2 without CRC, ...)
  if (b[0] === 0xff && (b[1] & 0xf6) === 0xf0) return { mime: 'audio/aac', ext: 'aac' };
  if (isMpegAudioFrame(b)) return { mime: 'audio/mpeg', ext: 'mp3' };

  return undefined;
}
