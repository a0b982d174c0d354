// The shipped encoder's card (card.json), shared by the script that writes it and the test that checks it.
import type { Preprocessing } from "../../src/data/preprocess";
import type { StudyProfile } from "../../src/study/profiles";

export const ENCODER_FILE = "mae.safetensors";
export const ENCODER_CARD_FILE = "card.json";

export interface EncoderCard {
  format: "mae-nnformer-encoder-card-v1";
  model: string;
  profile: string;
  command: string;
  commit: string;
  backend: string;
  data: { generator: "phantom"; seed: number; shape: number[]; unlabeled: number; heldOut: number; note: string };
  preprocessing: Preprocessing;
  pretrain: StudyProfile["pretrain"];
  steps: number;
  wallTimeS: number;
  /** About the machine (shared or quiet), when given. */
  machine: string;
  heldOut: { loss: number; meanBaseline: number; ratio: number };
  curve: Array<{ step: number; loss: number; meanBaseline: number }>;
  firstLosses: number[];
  file: string;
  bytes: number;
  sha256: string;
}
