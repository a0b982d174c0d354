// The manifest format as a zod schema: the source of truth for every field (data-manifests/README.md documents it).
// Shape only; checks between fields live in parse.ts.
import * as path from "path";
import { z } from "zod";

/** Split names, in the order they are reported. */
export const SPLIT_NAMES = ["train", "val", "test", "unlabeled"] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

const CASE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** `{KEY}` or `{KEY:width}`: filled from the case's varsFile (see resolveManifest). */
export const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9_]*)(?::(\d+))?\}/g;

const relPath = z
  .string()
  .min(1, { error: "path must not be empty" })
  .refine((p) => !path.isAbsolute(p) && !/^[A-Za-z]:[\\/]/.test(p), {
    error:
      "paths are relative to the data root; drop the leading folder and set the data root (or defaultDataRoot) instead",
  })
  .refine((p) => !p.includes("\\"), { error: "use forward slashes in paths" })
  .refine((p) => !p.split("/").includes(".."), { error: "paths must stay inside the data root (no '..')" });

const vec3 = z.tuple([z.number().positive(), z.number().positive(), z.number().positive()], {
  error: "expected three positive numbers [D, H, W]",
});

const LabelSchema = z
  .object({
    value: z.number({ error: "label value must be a number" }).int({ error: "label values must be integers" }).min(0),
    name: z.string().min(1, { error: "label name must not be empty" }),
  })
  .strict();

const CaseSchema = z
  .object({
    id: z
      .string()
      .regex(CASE_ID, { error: "case ids use letters, digits, '_', '.', '-' and start with a letter or digit" }),
    /** One path (a 3D file, or a 4D file holding every channel) or one path per channel, in `channels` order. */
    image: z.union([relPath, z.array(relPath).min(1)], {
      error: "expected a path (string) or a list of paths, one per channel",
    }),
    /** Label map path, or null for an image without labels. */
    label: z.union([relPath, z.null()], { error: "expected a path (string) or null when the case has no labels" }),
    /** Optional "KEY: value" text file (e.g. ACDC's Info.cfg) whose values fill `{KEY}` placeholders in image/label. */
    varsFile: relPath.optional(),
  })
  .strict();

const idList = z.array(z.string(), { error: "expected a list of case ids" });

const SplitsSchema = z.object({ train: idList, val: idList, test: idList, unlabeled: idList }).strict();

const SourceSchema = z
  .object({
    /** Where and how users obtain the data (registration, archive name, ...). */
    text: z.string().min(1),
    url: z.url({ error: "expected a full URL such as https://..." }).optional(),
    /** Licence or data-use terms, in a sentence. */
    licence: z.string().min(1),
  })
  .strict();

const GeneratorSchema = z
  .object({
    kind: z.literal("phantom"),
    seed: z.number().int(),
    count: z.number().int().positive(),
    shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()], {
      error: "expected three positive integers [D, H, W]",
    }),
    spacing: vec3,
  })
  .strict();

/** The manifest schema (zod). Unknown fields are errors at every level. */
export const ManifestSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, { error: "names are lower-case letters, digits and '-' (the file name)" }),
    description: z.string().min(1),
    modality: z.enum(["CT", "MRI", "multi-MRI", "PET", "US"]),
    /** Input channel names, in the order the model sees them. */
    channels: z.array(z.string().min(1)).min(1, { error: 'list at least one input channel, e.g. ["CT"]' }),
    /** Every value that may occur in a label map; value 0 (background) first, values ascending. */
    labels: z.array(LabelSchema).min(2, { error: "list background (0) and at least one foreground label" }),
    /** Label names reported in the study tables; default: every foreground label. */
    evaluatedLabels: z.array(z.string()).min(1).optional(),
    /** Target voxel spacing [D, H, W] in mm (the nnFormer plan's value where known). */
    spacingHint: vec3.optional(),
    source: SourceSchema,
    /** Human-readable pattern of the on-disk layout, shown when files are missing. */
    layout: z.string().min(1).optional(),
    /** Data root used when none is given: absolute, or relative to the project root. */
    defaultDataRoot: z.string().min(1).optional(),
    /** Present when the kit makes the files itself instead of downloading them. */
    generator: GeneratorSchema.optional(),
    cases: z.array(CaseSchema).min(1, { error: "list at least one case" }),
    splits: SplitsSchema,
  })
  .strict();

export type Manifest = z.infer<typeof ManifestSchema>;
export type ManifestCase = Manifest["cases"][number];
export type ManifestLabel = Manifest["labels"][number];
export type ManifestSplits = Manifest["splits"];
export type ManifestSource = Manifest["source"];
export type ManifestGenerator = NonNullable<Manifest["generator"]>;
