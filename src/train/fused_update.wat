;; The optimizer updates of src/train/optim.ts as single passes over memory, for the tfjs wasm backend (its memory is
;; imported, so tensors are read and written where they live). Each element goes through exactly the float32
;; operations, in the same order, as the tf-op update (f32x4 and f32 arithmetic is IEEE-exact in WebAssembly), so the
;; results are bit-identical; the gain is one pass instead of about fourteen (the updates are memory-bound).
;; Pointers are byte offsets into the imported memory; n is the element count. Assembled by scripts/build_wasm.ts
;; into fused_update_wasm.ts (a test checks that the committed bytes are this file's).
(module
  (import "env" "memory" (memory 0))

  ;; AdamW (PyTorch), per element:
  ;;   m' = m*b1 + g*ob1;  s' = s*b2 + (g*g)*ob2;  d = sqrt(s'/bc2) + eps
  ;;   w' = (decay ? w*dk : w) - (m'/d)*step
  (func (export "adamw")
    (param $g i32) (param $w i32) (param $m i32) (param $s i32)
    (param $wo i32) (param $mo i32) (param $so i32) (param $n i32)
    (param $b1 f32) (param $ob1 f32) (param $b2 f32) (param $ob2 f32) (param $bc2 f32) (param $eps f32)
    (param $decay i32) (param $dk f32) (param $step f32)
    (local $end i32) (local $o i32)
    (local $vg v128) (local $vm v128) (local $vs v128) (local $vw v128) (local $d v128)
    (local $sg f32) (local $sm f32) (local $ss f32) (local $sw f32) (local $sd f32)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $vg (v128.load (i32.add (local.get $g) (local.get $o))))
        (local.set $vm
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $o))) (f32x4.splat (local.get $b1)))
            (f32x4.mul (local.get $vg) (f32x4.splat (local.get $ob1)))))
        (local.set $vs
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $s) (local.get $o))) (f32x4.splat (local.get $b2)))
            (f32x4.mul (f32x4.mul (local.get $vg) (local.get $vg)) (f32x4.splat (local.get $ob2)))))
        (local.set $d
          (f32x4.add
            (f32x4.sqrt (f32x4.div (local.get $vs) (f32x4.splat (local.get $bc2))))
            (f32x4.splat (local.get $eps))))
        (local.set $vw (v128.load (i32.add (local.get $w) (local.get $o))))
        (if (local.get $decay)
          (then (local.set $vw (f32x4.mul (local.get $vw) (f32x4.splat (local.get $dk))))))
        (v128.store (i32.add (local.get $wo) (local.get $o))
          (f32x4.sub (local.get $vw)
            (f32x4.mul (f32x4.div (local.get $vm) (local.get $d)) (f32x4.splat (local.get $step)))))
        (v128.store (i32.add (local.get $mo) (local.get $o)) (local.get $vm))
        (v128.store (i32.add (local.get $so) (local.get $o)) (local.get $vs))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $vec)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $sg (f32.load (i32.add (local.get $g) (local.get $o))))
        (local.set $sm
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $m) (local.get $o))) (local.get $b1))
            (f32.mul (local.get $sg) (local.get $ob1))))
        (local.set $ss
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $s) (local.get $o))) (local.get $b2))
            (f32.mul (f32.mul (local.get $sg) (local.get $sg)) (local.get $ob2))))
        (local.set $sd (f32.add (f32.sqrt (f32.div (local.get $ss) (local.get $bc2))) (local.get $eps)))
        (local.set $sw (f32.load (i32.add (local.get $w) (local.get $o))))
        (if (local.get $decay) (then (local.set $sw (f32.mul (local.get $sw) (local.get $dk)))))
        (f32.store (i32.add (local.get $wo) (local.get $o))
          (f32.sub (local.get $sw) (f32.mul (f32.div (local.get $sm) (local.get $sd)) (local.get $step))))
        (f32.store (i32.add (local.get $mo) (local.get $o)) (local.get $sm))
        (f32.store (i32.add (local.get $so) (local.get $o)) (local.get $ss))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $tail))))

  ;; SGD with momentum (PyTorch), per element:
  ;;   gd = wdOn ? g + w*wd : g;  buf = first ? gd : m*mom + gd;  upd = nesterov ? gd + buf*mom : buf
  ;;   w' = w - upd*lr;  m' = buf
  (func (export "sgd")
    (param $g i32) (param $w i32) (param $m i32) (param $wo i32) (param $mo i32) (param $n i32)
    (param $wdOn i32) (param $wd f32) (param $first i32) (param $mom f32) (param $nesterov i32) (param $lr f32)
    (local $o i32) (local $end i32)
    (local $vw v128) (local $gd v128) (local $buf v128) (local $upd v128)
    (local $sw f32) (local $sgd f32) (local $sbuf f32) (local $supd f32)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $vw (v128.load (i32.add (local.get $w) (local.get $o))))
        (local.set $gd (v128.load (i32.add (local.get $g) (local.get $o))))
        (if (local.get $wdOn)
          (then (local.set $gd (f32x4.add (local.get $gd) (f32x4.mul (local.get $vw) (f32x4.splat (local.get $wd)))))))
        (local.set $buf (local.get $gd))
        (if (i32.eqz (local.get $first))
          (then
            (local.set $buf
              (f32x4.add
                (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $o))) (f32x4.splat (local.get $mom)))
                (local.get $gd)))))
        (local.set $upd (local.get $buf))
        (if (local.get $nesterov)
          (then (local.set $upd (f32x4.add (local.get $gd) (f32x4.mul (local.get $buf) (f32x4.splat (local.get $mom)))))))
        (v128.store (i32.add (local.get $wo) (local.get $o))
          (f32x4.sub (local.get $vw) (f32x4.mul (local.get $upd) (f32x4.splat (local.get $lr)))))
        (v128.store (i32.add (local.get $mo) (local.get $o)) (local.get $buf))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $vec)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $o) (local.get $end)))
        (local.set $sw (f32.load (i32.add (local.get $w) (local.get $o))))
        (local.set $sgd (f32.load (i32.add (local.get $g) (local.get $o))))
        (if (local.get $wdOn)
          (then (local.set $sgd (f32.add (local.get $sgd) (f32.mul (local.get $sw) (local.get $wd))))))
        (local.set $sbuf (local.get $sgd))
        (if (i32.eqz (local.get $first))
          (then
            (local.set $sbuf
              (f32.add (f32.mul (f32.load (i32.add (local.get $m) (local.get $o))) (local.get $mom)) (local.get $sgd)))))
        (local.set $supd (local.get $sbuf))
        (if (local.get $nesterov)
          (then (local.set $supd (f32.add (local.get $sgd) (f32.mul (local.get $sbuf) (local.get $mom))))))
        (f32.store (i32.add (local.get $wo) (local.get $o))
          (f32.sub (local.get $sw) (f32.mul (local.get $supd) (local.get $lr))))
        (f32.store (i32.add (local.get $mo) (local.get $o)) (local.get $sbuf))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $tail)))))
