// Entry of the GPU pack's bundled webgpu suite: mocha's programmatic runner with the test/webgpu files compiled in
// (esbuild), so the suite runs with nothing but node. Exit status = number of failed tests (0 = all passed).
import Mocha from "mocha";

const mocha = new Mocha({ timeout: 600000, reporter: "spec" });
mocha.suite.emit("pre-require", globalThis, "webgpu-suite", mocha); // describe/it/before as globals
require("../../test/webgpu/kernels.test");
require("../../test/webgpu/fast_ops.test");
require("../../test/webgpu/guard.test");
require("../../test/webgpu/training.test");
require("../../test/webgpu/study.test");
mocha.run((failures) => process.exit(Math.min(failures, 100)));
