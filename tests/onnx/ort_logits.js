// ONNX Runtime's logits of an ONNX file on a batch (tests/cli/test_onnx.sh).
//   node ort_logits.js MODEL.onnx INPUT.f32 N C H W OUT.f32
// INPUT.f32: N x C x H x W little-endian floats for the model's one input;
// OUT.f32: its one output (N x classes). Needs onnxruntime-node on NODE_PATH.
const fs = require('fs');
const ort = require('onnxruntime-node');
(async () => {
  const [model, input, n, c, h, w, out] = process.argv.slice(2);
  const dims = [n, c, h, w].map(Number);
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const session = await ort.InferenceSession.create(model, {graphOptimizationLevel: 'disabled'});
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', x, dims);
  const y = (await session.run(feeds))[session.outputNames[0]];
  fs.writeFileSync(out, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.length * 4));
  console.log(`ort logits ${y.dims.join(' ')} version ${ort.env.versions ? ort.env.versions.common : '?'}`);
})().catch((e) => { console.error(`ort_logits: ${e.message}`); process.exit(2); });
