// import() that survives compilation to CommonJS (tsx, ts-node, tslab all rewrite `import()` to `require`).
// nifti-reader-js 0.8 is ESM-only, so it has to come in through this door.
export const importEsm = new Function("specifier", "return import(specifier)") as <T = any>(
  specifier: string,
) => Promise<T>;
