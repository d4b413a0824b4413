;; The hot loops of VectorIndex in WebAssembly SIMD: the random projection of a vector, and
;; stage one of the search (Hamming distances of 128-bit codes by i8x16.popcnt, then the rows at
;; or under a cut-off distance). Compiled into HAMMING_WASM_BASE64 (hamming-codes.ts).
(module
  (memory (export "memory") 1)

  ;; distances(codes, n, query, out, hist): for each of the n 16-byte codes from address
  ;; `codes`, writes d = popcount(code XOR query) (0 to 128) as one byte at out + i, and counts
  ;; it in hist (129 i32 counters at `hist`, which the caller zeroes).
  (func (export "distances") (param $codes i32) (param $n i32) (param $query i32) (param $out i32) (param $hist i32)
    (local $q v128)
    (local $x v128)
    (local $d i32)
    (local $end i32)
    (local $h i32)
    (local.set $q (v128.load (local.get $query)))
    (local.set $end (i32.add (local.get $out) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
        (local.set $x
          (i32x4.extadd_pairwise_i16x8_u
            (i16x8.extadd_pairwise_i8x16_u
              (i8x16.popcnt (v128.xor (v128.load (local.get $codes)) (local.get $q))))))
        (local.set $d
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $x)) (i32x4.extract_lane 1 (local.get $x)))
            (i32.add (i32x4.extract_lane 2 (local.get $x)) (i32x4.extract_lane 3 (local.get $x)))))
        (i32.store8 (local.get $out) (local.get $d))
        (local.set $h (i32.add (local.get $hist) (i32.shl (local.get $d) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $codes (i32.add (local.get $codes) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 1)))
        (br $next))))

  ;; collect(dist, n, cutoff, less, equal, maxEqual) -> count: in row order, writes the row
  ;; number (i32) of every distance under `cutoff` at less, less + 4, ..., and of the first
  ;; `maxEqual` distances equal to it at equal, equal + 4, ...; returns how many equal ones.
  (func (export "collect") (param $dist i32) (param $n i32) (param $cutoff i32) (param $less i32) (param $equal i32) (param $maxEqual i32) (result i32)
    (local $i i32)
    (local $d i32)
    (local $count i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $d (i32.load8_u (i32.add (local.get $dist) (local.get $i))))
        (if (i32.lt_u (local.get $d) (local.get $cutoff))
          (then
            (i32.store (local.get $less) (local.get $i))
            (local.set $less (i32.add (local.get $less) (i32.const 4))))
          (else
            (if (i32.and (i32.eq (local.get $d) (local.get $cutoff)) (i32.lt_u (local.get $count) (local.get $maxEqual)))
              (then
                (i32.store (i32.add (local.get $equal) (i32.shl (local.get $count) (i32.const 2))) (local.get $i))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $count))

  ;; project(matrix, rows, dims, vec, out): out[r] = sum over i of matrix[r * dims + i] * vec[i],
  ;; f32, for r < rows; dims is a multiple of 8 (rows zero-padded), addresses 16-byte aligned.
  (func (export "project") (param $matrix i32) (param $rows i32) (param $dims i32) (param $vec i32) (param $out i32)
    (local $r i32)
    (local $v i32)
    (local $vend i32)
    (local $a v128)
    (local $b v128)
    (local.set $vend (i32.add (local.get $vec) (i32.shl (local.get $dims) (i32.const 2))))
    (block $rdone
      (loop $rnext
        (br_if $rdone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $a (v128.const i32x4 0 0 0 0))
        (local.set $b (v128.const i32x4 0 0 0 0))
        (local.set $v (local.get $vec))
        (block $idone
          (loop $inext
            (br_if $idone (i32.ge_u (local.get $v) (local.get $vend)))
            (local.set $a (f32x4.add (local.get $a) (f32x4.mul (v128.load (local.get $matrix)) (v128.load (local.get $v)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul (v128.load offset=16 (local.get $matrix)) (v128.load offset=16 (local.get $v)))))
            (local.set $matrix (i32.add (local.get $matrix) (i32.const 32)))
            (local.set $v (i32.add (local.get $v) (i32.const 32)))
            (br $inext)))
        (local.set $a (f32x4.add (local.get $a) (local.get $b)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
            (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rnext)))))

