import { sniffMedia } from './mime-sniff';

const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const u32be = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u32le = (n: number): number[] => u32be(n).reverse();
/** An ISO-BMFF ftyp box with the given major and compatible brands, followed by some bytes. */
const ftyp = (major: string, ...compatible: string[]): Buffer =>
  bytes(u32be(16 + 4 * compatible.length), 'ftyp', major, [0, 0, 0, 0], ...compatible, [0, 0, 0, 8], 'free');
const riff = (form: string): Buffer => bytes('RIFF', u32le(1234), form, 'fmt ', [16, 0, 0, 0]);

describe('sniffMedia', () => {
  it.each<[string, Buffer, string, string]>([
    ['png', bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0, 0, 0, 13], 'IHDR'), 'image/png', 'png'],
    ['jpeg', bytes([0xff, 0xd8, 0xff, 0xe0, 0, 16], 'JFIF'), 'image/jpeg', 'jpg'],
    ['gif87a', bytes('GIF87a', [1, 0, 1, 0]), 'image/gif', 'gif'],
    ['gif89a', bytes('GIF89a', [1, 0, 1, 0]), 'image/gif', 'gif'],
    ['webp', riff('WEBP'), 'image/webp', 'webp'],
    ['bmp', bytes('BM', u32le(70), [0, 0, 0, 0], u32le(54), u32le(40), u32le(1), u32le(1)), 'image/bmp', 'bmp'],
    ['tiff little-endian', bytes('II', [0x2a, 0], u32le(8)), 'image/tiff', 'tiff'],
    ['tiff big-endian', bytes('MM', [0, 0x2a], u32be(8)), 'image/tiff', 'tiff'],
    ['heic', ftyp('heic', 'mif1', 'heic'), 'image/heic', 'heic'],
    ['heif mif1', ftyp('mif1', 'mif1', 'heic'), 'image/heic', 'heic'],
    ['avif', ftyp('avif', 'mif1', 'miaf'), 'image/avif', 'avif'],
    ['avif via mif1', ftyp('mif1', 'avif', 'miaf'), 'image/avif', 'avif'],
    ['wav', riff('WAVE'), 'audio/wav', 'wav'],
    ['mp3 with ID3', bytes('ID3', [4, 0, 0, 0, 0, 0, 0]), 'audio/mpeg', 'mp3'],
    ['mp3 frame (MPEG-1 layer III)', bytes([0xff, 0xfb, 0x90, 0x64, 0, 0]), 'audio/mpeg', 'mp3'],
    ['mp3 frame (MPEG-2 layer III)', bytes([0xff, 0xf3, 0x48, 0xc4, 0, 0]), 'audio/mpeg', 'mp3'],
    ['ogg', bytes('OggS', [0, 2, 0, 0, 0, 0]), 'audio/ogg', 'ogg'],
    ['flac', bytes('fLaC', [0, 0, 0, 34]), 'audio/flac', 'flac'],
    ['m4a', ftyp('M4A ', 'M4A ', 'mp42', 'isom'), 'audio/mp4', 'm4a'],
    ['mp4 isom', ftyp('isom', 'isom', 'iso2', 'avc1', 'mp41'), 'video/mp4', 'mp4'],
    ['mp4 mp42', ftyp('mp42', 'mp42', 'isom'), 'video/mp4', 'mp4'],
    ['mov', ftyp('qt  ', 'qt  '), 'video/quicktime', 'mov'],
    ['webm/mkv', bytes([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01]), 'video/webm', 'webm'],
    ['aac ADTS FFF1', bytes([0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc]), 'audio/aac', 'aac'],
    ['aac ADTS FFF9', bytes([0xff, 0xf9, 0x50, 0x80, 0x02, 0x1f, 0xfc]), 'audio/aac', 'aac'],
    ['avi', riff('AVI '), 'video/x-msvideo', 'avi'],
  ])('recognises %s', (_name, head, mime, ext) => {
    expect(sniffMedia(head)).toEqual({ mime, ext });
  });

  it('only needs the first bytes and ignores whatever follows the first 64', () => {
    const png = Buffer.concat([bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(1000, 7)]);
    expect(sniffMedia(png)).toEqual({ mime: 'image/png', ext: 'png' });
  });

  it.each<[string, Buffer]>([
    ['empty', Buffer.alloc(0)],
    ['one byte', bytes([0xff])],
    ['text', bytes('hello world, this is not media')],
    ['html', bytes('<!DOCTYPE html><html>')],
    ['json', bytes('{"image":"png"}')],
    ['pdf', bytes('%PDF-1.7\n')],
    ['zip', bytes('PK', [3, 4, 20, 0])],
    ['unknown RIFF form', riff('CDXA')],
    ['truncated png', bytes([0x89, 0x50, 0x4e, 0x47])],
    ['BM without a DIB header', bytes('BMP is a nice format, really')],
    ['0xFF followed by a reserved MPEG version', bytes([0xff, 0xe8, 0x90, 0x00])],
    ['frame sync with a bad bitrate index', bytes([0xff, 0xfb, 0xf0, 0x00])],
    ['frame sync with a reserved sample rate', bytes([0xff, 0xfb, 0x9c, 0x00])],
  ])('returns undefined for %s', (_name, head) => {
    expect(sniffMedia(head)).toBeUndefined();
  });
});
