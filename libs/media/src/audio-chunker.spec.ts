import { mergeTranscripts, planAudioChunks } from './audio-chunker';

describe('planAudioChunks', () => {
  it('cuts every chunk length, each chunk repeating the overlap before its own part', () => {
    const chunks = planAudioChunks({ durationSec: 1800, chunkSec: 600, overlapSec: 2 });
    expect(chunks).toEqual([
      { index: 0, start: 0, from: 0, end: 600 },
      { index: 1, start: 598, from: 600, end: 1200 },
      { index: 2, start: 1198, from: 1200, end: 1800 },
    ]);
  });

  it('moves a cut back to the latest silence within the last fifth of a chunk; ignores silences further back', () => {
    const chunks = planAudioChunks({ durationSec: 1500, chunkSec: 600, overlapSec: 0, silences: [[100, 110], [530, 540], [560, 562]] });
    expect(chunks.map((c) => c.from)).toEqual([0, 561, 1161]);
    const far = planAudioChunks({ durationSec: 1300, chunkSec: 600, overlapSec: 0, silences: [[100, 110]] });
    expect(far.map((c) => c.from)).toEqual([0, 600]);
  });

  it('folds a short tail into the last chunk and keeps short audio in one chunk', () => {
    expect(planAudioChunks({ durationSec: 1250, chunkSec: 600, overlapSec: 2 }).map((c) => [c.from, c.end])).toEqual([
      [0, 600],
      [600, 1250],
    ]);
    expect(planAudioChunks({ durationSec: 42, chunkSec: 600, overlapSec: 2 })).toEqual([{ index: 0, start: 0, from: 0, end: 42 }]);
  });
});

describe('mergeTranscripts', () => {
  const chunks = planAudioChunks({ durationSec: 40, chunkSec: 20, overlapSec: 4 });

  it('makes times absolute and keeps each overlapped segment once, by the chunk that owns its midpoint', () => {
    // Chunk 1 sends 16-40 s: its first segment (16-21 s, midpoint 18.5) repeats chunk 0's end.
    const merged = mergeTranscripts(
      chunks,
      [
        { text: 'a b', language: 'en', segments: [{ start: 0, end: 10, text: ' a' }, { start: 10, end: 20, text: ' b' }] },
        { text: 'b2 c d', segments: [{ start: 0, end: 5, text: ' b2' }, { start: 5, end: 14, text: ' c' }, { start: 14, end: 24, text: ' d' }] },
      ],
      40,
    );
    expect(merged.segments.map((s) => [s.start, s.end, s.text.trim()])).toEqual([
      [0, 10, 'a'],
      [10, 20, 'b'],
      [21, 30, 'c'],
      [30, 40, 'd'],
    ]);
    expect(merged).toMatchObject({ text: 'a b c d', language: 'en', duration: 40 });
  });

  it('joins the texts of chunks answered without segments', () => {
    expect(mergeTranscripts(chunks, [{ text: ' one ' }, { text: 'two' }], 40)).toMatchObject({ text: 'one two', segments: [] });
  });
});
