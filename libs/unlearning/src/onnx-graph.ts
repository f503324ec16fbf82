import { onnx } from 'onnx-proto';
import { LITTLE_ENDIAN } from './architecture';
import { UNLEARNING_CODE_VERSION } from './version';

/** Fixed opset and IR version of every graph the engine writes, so that bytes never depend on the environment. */
export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
export const ONNX_PRODUCER_NAME = 'lethe-unlearning';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

export type AttributeValue = number | number[] | { int: number } | { ints: number[] } | { graph: onnx.IGraphProto };

/** A small builder of one ONNX graph; node and value names are given explicitly so output bytes are stable. */
export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  /** Adds a node with one output and returns that output's name. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    const output = outputName ?? `${opType.toLowerCase()}_${this.counter++}`;
    this.ops(opType, inputs, [output], attributes);
    return output;
  }

  /** Adds a node with several outputs (named by the caller). */
  ops(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}): void {
    this.nodes.push({
      name: `n${this.nodes.length}_${opType}`,
      opType,
      input: inputs,
      output: outputs,
      attribute: Object.keys(attributes)
        .sort()
        .map((key) => toAttribute(key, attributes[key])),
    });
  }

  floatInput(name: string, shape: (number | string)[]): string {
    this.inputs.push(valueInfo(name, FLOAT, shape));
    return name;
  }

  floatOutput(name: string, shape: (number | string)[]): void {
    this.outputs.push(valueInfo(name, FLOAT, shape));
  }

  int64Output(name: string, shape: (number | string)[]): void {
    this.outputs.push(valueInfo(name, INT64, shape));
  }

  floatConstant(name: string, dims: number[], values: Float32Array): string {
    let raw: Uint8Array;
    if (LITTLE_ENDIAN) {
      // The encoder copies rawData into the output, so a view of the caller's array is enough.
      raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    } else {
      raw = new Uint8Array(values.length * 4);
      const view = new DataView(raw.buffer);
      for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
    }
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: raw });
    return name;
  }

  int64Constant(name: string, dims: number[], values: number[]): string {
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < values.length; i++) view.setBigInt64(i * 8, BigInt(values[i]), true);
    this.initializers.push({ name, dims, dataType: INT64, rawData: raw });
    return name;
  }

  /** The graph itself (a subgraph's body: Scan, Loop). */
  toGraph(): onnx.IGraphProto {
    return { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs };
  }

  /** Encodes the graph as a ModelProto: no timestamps, fixed producer, opset and IR version. */
  encode(docString: string): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: ONNX_IR_VERSION,
      producerName: ONNX_PRODUCER_NAME,
      producerVersion: UNLEARNING_CODE_VERSION,
      domain: 'org.lethe',
      modelVersion: 1,
      docString,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      graph: this.toGraph(),
    };
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, elemType: number, shape: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function toAttribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return { name, type: T.FLOAT, f: value };
  if (Array.isArray(value)) return { name, type: T.FLOATS, floats: value };
  if ('int' in value) return { name, type: T.INT, i: value.int };
  if ('graph' in value) return { name, type: T.GRAPH, g: value.graph };
  return { name, type: T.INTS, ints: value.ints };
}
