// Learning-rate schedules, as functions of the step (0-based) and the total number of steps.

export type Schedule =
  /** nnU-Net: lr0 * (1 - step/total)^exponent, optional linear warmup first. */
  | { kind: "poly"; lr: number; exponent: number; warmupSteps: number }
  /** MAE: linear warmup, then half-cosine from lr down to minLr. */
  | { kind: "cosine"; lr: number; minLr: number; warmupSteps: number }
  | { kind: "constant"; lr: number; warmupSteps: number };

/** Learning rate at `step` of `total`. */
export function learningRate(s: Schedule, step: number, total: number): number {
  if (!(s.lr > 0)) throw new Error(`schedule.lr is ${s.lr}: use a positive learning rate, e.g. 1e-2`);
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, total - s.warmupSteps);
  const t = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  switch (s.kind) {
    case "poly":
      return s.lr * Math.pow(1 - t, s.exponent);
    case "cosine":
      return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * t));
    case "constant":
      return s.lr;
  }
}
