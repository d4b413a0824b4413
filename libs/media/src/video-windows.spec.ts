import { mergeVideoSegments, planVideoWindows } from './video-windows';

describe('planVideoWindows', () => {
  it('makes windows of whole intervals within the per-request maximum', () => {
    expect(planVideoWindows({ fromSec: 0, toSec: 420, maxSec: 120, intervalSec: 16 }).map((w) => [w.start, w.end])).toEqual([
      [0, 112],
      [112, 224],
      [224, 336],
      [336, 420],
    ]);
    expect(planVideoWindows({ fromSec: 30, toSec: 270, maxSec: 120 }).map((w) => [w.start, w.end])).toEqual([
      [30, 150],
      [150, 270],
    ]);
  });
});

describe('mergeVideoSegments', () => {
  it('offsets each window by its start, in window order, clipped to the window', () => {
    const windows = planVideoWindows({ fromSec: 0, toSec: 200, maxSec: 120, intervalSec: 60 });
    const merged = mergeVideoSegments(windows, [
      [{ start_offset_sec: 0, end_offset_sec: 60, embedding: [1] }, { start_offset_sec: 60, end_offset_sec: 120, embedding: [2] }],
      [{ start_offset_sec: 0, end_offset_sec: 60, embedding: [3] }, { start_offset_sec: 60, end_offset_sec: 90, embedding: [4] }],
    ]);
    expect(merged.map((s) => [s.start_offset_sec, s.end_offset_sec, s.embedding[0]])).toEqual([
      [0, 60, 1],
      [60, 120, 2],
      [120, 180, 3],
      [180, 200, 4],
    ]);
  });
});
