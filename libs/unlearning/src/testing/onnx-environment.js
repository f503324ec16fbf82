// Jest's node environment runs each test file in its own realm, so typed arrays made by onnxruntime-node's
// native code fail onnxruntime-common's `instanceof Float32Array` checks. Tests that run ONNX sessions use
// this environment (docblock `@jest-environment ./libs/unlearning/src/testing/onnx-environment.js`),
// which shares the host's typed array constructors with the test realm.
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Uint8ClampedArray', 'DataView',
];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxEnvironment;
