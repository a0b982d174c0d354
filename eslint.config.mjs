// ESLint checks only for unused and unreachable code (formatting is prettier's job; types are tsc's).
import tseslint from "typescript-eslint";

export default [
  { ignores: ["node_modules/", "build/", "runs/", "data/", "notebooks/", "jupyter/"] },
  {
    files: ["src/**/*.ts", "test/**/*.ts", "scripts/**/*.ts"],
    languageOptions: { parser: tseslint.parser },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true },
      ],
      "@typescript-eslint/no-unused-expressions": "error",
      "no-unused-labels": "error",
      "no-unused-private-class-members": "error",
      "no-unreachable": "error",
    },
  },
];
