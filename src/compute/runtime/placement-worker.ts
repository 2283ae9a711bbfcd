// Run by placement.ts in a child process: creates one session with onnxruntime's verbose log on, whose node
// placement lines go to this process's stderr (onnxruntime-node writes its log natively, out of JavaScript's reach).
import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import { sessionConfig, type ExecutionProvider } from './session.ts';

const [modelPath, ep, cpuNodes] = process.argv.slice(2);
const config = sessionConfig({ ep: ep as ExecutionProvider, cpuNodes: cpuNodes ? cpuNodes.split('\n') : [] });
const session = await ort.InferenceSession.create(await readFile(modelPath), { ...config, logSeverityLevel: 0 });
await session.release();
