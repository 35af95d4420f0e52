"""Convert the Caffe HED model to ONNX once, for OpenCV builds without the Caffe importer.

OpenCV 5 removed ``cv2.dnn.readNetFromCaffe``; it reads ONNX. ``evalkit edges
--convert-hed deploy.prototxt hed_pretrained_bsds.caffemodel --out hed.onnx`` writes an
ONNX model that :class:`~evalkit.inputs.edges.detectors.HedDetector` runs with the same
pre-processing (BGR, reflect pad 32, Caffe mean) and the same output (the last layer's top,
HED's ``sigmoid-fuse``).

Reading Caffe files needs Caffe's protobuf schema. Caffe is not installable here, so the
few messages the converter needs are declared below with the field numbers of Caffe's
``src/caffe/proto/caffe.proto`` (BVLC), and parsed by the ``protobuf`` library itself
(``text_format`` for the prototxt, the binary parser for the caffemodel); unknown fields
(solver settings, fillers, ``param { lr_mult }``) are skipped. The ONNX graph is built with
the ``onnx`` package's helpers and checked with its checker (``pip install onnx``).

Layers converted (what HED and VGG-style nets use): ``Input``, ``Convolution``,
``Deconvolution`` (-> ``ConvTranspose``), ``ReLU`` (with ``negative_slope`` ->
``LeakyRelu``), ``Pooling`` (MAX/AVE, Caffe's ceil rounding), ``Concat``, ``Crop``,
``Sigmoid``, ``Dropout``/``Split`` (identity at inference). ``Crop`` follows the
centre-crop that OpenCV's ``samples/dnn/edge_detection.py`` registers for HED (crop the
first input to the second's spatial size, centred), the way the seed ran HED; the offsets
are computed from the runtime shapes, so the ONNX model accepts any image size.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


class ConvertError(ValueError):
    """The Caffe model cannot be converted (message names the layer and why)."""


_F = "google.protobuf.descriptor_pb2"


@lru_cache(maxsize=1)
def caffe_pb():
    """Message classes for the subset of caffe.proto the converter reads (namespace-like
    object with ``NetParameter``, ``LayerParameter``, ``BlobProto``...)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="evalkit_caffe_subset.proto",
                                            package="caffe", syntax="proto2")
    T = descriptor_pb2.FieldDescriptorProto
    opt, rep = T.LABEL_OPTIONAL, T.LABEL_REPEATED

    def msg(name: str, fields: list[tuple], enums: dict[str, list[str]] | None = None) -> None:
        m = fd.message_type.add(name=name)
        for ename, values in (enums or {}).items():
            e = m.enum_type.add(name=ename)
            for i, v in enumerate(values):
                e.value.add(name=v, number=i)
        for fname, number, label, ftype, *rest in fields:
            f = m.field.add(name=fname, number=number, label=label, type=ftype)
            if rest:
                f.type_name = f".caffe.{rest[0]}"
            if label == rep and ftype in (T.TYPE_FLOAT, T.TYPE_INT64, T.TYPE_DOUBLE):
                f.options.packed = True

    msg("BlobShape", [("dim", 1, rep, T.TYPE_INT64)])
    msg("BlobProto", [("num", 1, opt, T.TYPE_INT64), ("channels", 2, opt, T.TYPE_INT64),
                      ("height", 3, opt, T.TYPE_INT64), ("width", 4, opt, T.TYPE_INT64),
                      ("data", 5, rep, T.TYPE_FLOAT), ("shape", 7, opt, T.TYPE_MESSAGE,
                                                       "BlobShape"),
                      ("double_data", 8, rep, T.TYPE_DOUBLE)])
    msg("ConvolutionParameter", [
        ("num_output", 1, opt, T.TYPE_UINT32), ("bias_term", 2, opt, T.TYPE_BOOL),
        ("pad", 3, rep, T.TYPE_UINT32), ("kernel_size", 4, rep, T.TYPE_UINT32),
        ("group", 5, opt, T.TYPE_UINT32), ("stride", 6, rep, T.TYPE_UINT32),
        ("pad_h", 9, opt, T.TYPE_UINT32), ("pad_w", 10, opt, T.TYPE_UINT32),
        ("kernel_h", 11, opt, T.TYPE_UINT32), ("kernel_w", 12, opt, T.TYPE_UINT32),
        ("stride_h", 13, opt, T.TYPE_UINT32), ("stride_w", 14, opt, T.TYPE_UINT32),
        ("dilation", 18, rep, T.TYPE_UINT32)])
    msg("PoolingParameter", [
        ("pool", 1, opt, T.TYPE_ENUM, "PoolingParameter.PoolMethod"),
        ("kernel_size", 2, opt, T.TYPE_UINT32),
        ("stride", 3, opt, T.TYPE_UINT32), ("pad", 4, opt, T.TYPE_UINT32),
        ("kernel_h", 5, opt, T.TYPE_UINT32), ("kernel_w", 6, opt, T.TYPE_UINT32),
        ("stride_h", 7, opt, T.TYPE_UINT32), ("stride_w", 8, opt, T.TYPE_UINT32),
        ("pad_h", 9, opt, T.TYPE_UINT32), ("pad_w", 10, opt, T.TYPE_UINT32),
        ("global_pooling", 12, opt, T.TYPE_BOOL),
        ("round_mode", 13, opt, T.TYPE_ENUM, "PoolingParameter.RoundMode")],
        enums={"PoolMethod": ["MAX", "AVE", "STOCHASTIC"], "RoundMode": ["CEIL", "FLOOR"]})
    msg("ConcatParameter", [("concat_dim", 1, opt, T.TYPE_UINT32),
                            ("axis", 2, opt, T.TYPE_INT32)])
    msg("CropParameter", [("axis", 1, opt, T.TYPE_INT32), ("offset", 2, rep, T.TYPE_UINT32)])
    msg("ReLUParameter", [("negative_slope", 1, opt, T.TYPE_FLOAT)])
    msg("InputParameter", [("shape", 1, rep, T.TYPE_MESSAGE, "BlobShape")])
    msg("LayerParameter", [
        ("name", 1, opt, T.TYPE_STRING), ("type", 2, opt, T.TYPE_STRING),
        ("bottom", 3, rep, T.TYPE_STRING), ("top", 4, rep, T.TYPE_STRING),
        ("blobs", 7, rep, T.TYPE_MESSAGE, "BlobProto"),
        ("concat_param", 104, opt, T.TYPE_MESSAGE, "ConcatParameter"),
        ("convolution_param", 106, opt, T.TYPE_MESSAGE, "ConvolutionParameter"),
        ("pooling_param", 121, opt, T.TYPE_MESSAGE, "PoolingParameter"),
        ("relu_param", 123, opt, T.TYPE_MESSAGE, "ReLUParameter"),
        ("input_param", 143, opt, T.TYPE_MESSAGE, "InputParameter"),
        ("crop_param", 144, opt, T.TYPE_MESSAGE, "CropParameter")])
    # the deprecated V1 layer (older caffemodels): only what carries weights
    msg("V1LayerParameter", [("bottom", 2, rep, T.TYPE_STRING), ("top", 3, rep, T.TYPE_STRING),
                             ("name", 4, opt, T.TYPE_STRING),
                             ("blobs", 6, rep, T.TYPE_MESSAGE, "BlobProto")])
    msg("NetParameter", [
        ("name", 1, opt, T.TYPE_STRING),
        ("layers", 2, rep, T.TYPE_MESSAGE, "V1LayerParameter"),
        ("input", 3, rep, T.TYPE_STRING), ("input_dim", 4, rep, T.TYPE_INT64),
        ("input_shape", 8, rep, T.TYPE_MESSAGE, "BlobShape"),
        ("layer", 100, rep, T.TYPE_MESSAGE, "LayerParameter")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)

    class _NS:
        pass

    ns = _NS()
    for m in fd.message_type:
        setattr(ns, m.name, message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"caffe.{m.name}")))
    return ns


def blob_array(blob) -> np.ndarray:
    """A Caffe BlobProto as a float32 array of its shape (``shape`` or num/ch/h/w)."""
    data = np.asarray(blob.double_data if len(blob.double_data) else blob.data, np.float32)
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        shape = tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))
    if int(np.prod(shape)) != data.size:
        raise ConvertError(f"blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def read_caffe(prototxt: str | Path, caffemodel: str | Path):
    """``(net structure from the prototxt, {layer name: [weight arrays]})``."""
    from google.protobuf import text_format

    pb = caffe_pb()
    net = pb.NetParameter()
    try:
        text_format.Parse(Path(prototxt).read_text(encoding="utf-8"), net,
                          allow_unknown_field=True)
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise ConvertError(f"{prototxt} is not a Caffe prototxt: {exc}") from exc
    weights = pb.NetParameter()
    try:
        weights.ParseFromString(Path(caffemodel).read_bytes())
    except Exception as exc:  # protobuf DecodeError
        raise ConvertError(f"{caffemodel} is not a Caffe model: {exc}") from exc
    blobs = {lay.name: [blob_array(b) for b in lay.blobs]
             for lay in list(weights.layer) + list(weights.layers) if len(lay.blobs)}
    return net, blobs


def _pair(single, h, w, default):
    """Caffe's (h, w) from ``kernel_size``-style repeated/single and ``*_h``/``*_w`` fields."""
    if h or w:
        return int(h), int(w)
    try:
        vals = [int(v) for v in single]  # repeated field (Convolution)
    except TypeError:
        vals = [int(single)] if single else []  # single field (Pooling)
    if not vals:
        return default, default
    return int(vals[0]), int(vals[-1])


def caffe_to_onnx(prototxt: str | Path, caffemodel: str | Path, out: str | Path,
                  opset: int = 13) -> Path:
    """Convert a Caffe deploy net + weights into an ONNX model at ``out`` (see the module
    docstring for the layers and the Crop convention). Returns ``out``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ConvertError("converting needs the onnx package: pip install onnx") from exc
    net, blobs = read_caffe(prototxt, caffemodel)
    nodes, inits, inputs = [], [], []
    current: dict[str, str] = {}  # Caffe blob name -> current ONNX tensor name
    counter = [0]

    def fresh(name: str) -> str:
        counter[0] += 1
        return f"{name}__{counter[0]}"

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def add_input(name: str, dims) -> None:
        c = int(dims[1]) if len(dims) > 1 else 3
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                    [1, c, "height", "width"]))
        current[name] = name

    dims = list(net.input_dim)
    for i, name in enumerate(net.input):
        shape = (list(net.input_shape[i].dim) if i < len(net.input_shape)
                 else dims[4 * i:4 * i + 4])
        add_input(name, shape)
    const("_hw_axes", np.array([2, 3], np.int64))
    const("_two", np.array([2], np.int64))
    last = None
    for lay in net.layer:
        kind = lay.type
        bottoms = []
        for b in lay.bottom:
            if b not in current:
                raise ConvertError(f"layer '{lay.name}': input blob '{b}' is not produced "
                                   "by an earlier layer")
            bottoms.append(current[b])
        if kind == "Input":
            for t in lay.top:
                add_input(t, list(lay.input_param.shape[0].dim) if lay.input_param.shape
                          else [1, 3])
            continue
        outs = [fresh(t) for t in lay.top]
        w = blobs.get(lay.name, [])
        if kind in ("Convolution", "Deconvolution"):
            p = lay.convolution_param
            if not w:
                raise ConvertError(f"layer '{lay.name}' ({kind}) has no weights in "
                                   f"{caffemodel}")
            kh, kw = _pair(p.kernel_size, p.kernel_h, p.kernel_w, 1)
            sh, sw = _pair(p.stride, p.stride_h, p.stride_w, 1)
            ph, pw = _pair(p.pad, p.pad_h, p.pad_w, 0)
            dil = int(p.dilation[0]) if len(p.dilation) else 1
            args = [bottoms[0], const(f"{lay.name}__W", w[0])]
            if len(w) > 1 and (not p.HasField("bias_term") or p.bias_term):
                args.append(const(f"{lay.name}__B", w[1].reshape(-1)))
            op = "Conv" if kind == "Convolution" else "ConvTranspose"
            nodes.append(helper.make_node(op, args, outs[:1], kernel_shape=[kh, kw],
                                          strides=[sh, sw], pads=[ph, pw, ph, pw],
                                          dilations=[dil, dil], group=int(p.group or 1),
                                          name=lay.name))
        elif kind == "ReLU":
            slope = lay.relu_param.negative_slope if lay.HasField("relu_param") else 0.0
            if slope:
                nodes.append(helper.make_node("LeakyRelu", bottoms[:1], outs[:1], alpha=slope,
                                              name=lay.name))
            else:
                nodes.append(helper.make_node("Relu", bottoms[:1], outs[:1], name=lay.name))
        elif kind == "Sigmoid":
            nodes.append(helper.make_node("Sigmoid", bottoms[:1], outs[:1], name=lay.name))
        elif kind in ("Dropout", "Split"):
            for o in outs:
                nodes.append(helper.make_node("Identity", bottoms[:1], [o]))
        elif kind == "Pooling":
            p = lay.pooling_param
            kh, kw = _pair(p.kernel_size, p.kernel_h, p.kernel_w, 1)
            sh, sw = _pair(p.stride, p.stride_h, p.stride_w, 1)
            ph, pw = _pair(p.pad, p.pad_h, p.pad_w, 0)
            if p.global_pooling:
                op = "GlobalMaxPool" if p.pool == 0 else "GlobalAveragePool"
                nodes.append(helper.make_node(op, bottoms[:1], outs[:1], name=lay.name))
            elif p.pool in (0, 1):
                op = "MaxPool" if p.pool == 0 else "AveragePool"
                extra = {} if p.pool == 0 else {"count_include_pad": 1}
                nodes.append(helper.make_node(
                    op, bottoms[:1], outs[:1], kernel_shape=[kh, kw], strides=[sh, sw],
                    pads=[ph, pw, ph, pw], ceil_mode=0 if p.round_mode == 1 else 1,
                    name=lay.name, **extra))
            else:
                raise ConvertError(f"layer '{lay.name}': stochastic pooling is not supported")
        elif kind == "Concat":
            p = lay.concat_param
            axis = int(p.axis) if p.HasField("axis") else int(p.concat_dim or 1) if \
                p.HasField("concat_dim") else 1
            nodes.append(helper.make_node("Concat", bottoms, outs[:1], axis=axis,
                                          name=lay.name))
        elif kind == "Crop":
            if len(bottoms) != 2:
                raise ConvertError(f"layer '{lay.name}': Crop needs two inputs")
            x, ref = bottoms
            n = lay.name
            nodes += [
                helper.make_node("Shape", [x], [f"{n}__xs"]),
                helper.make_node("Gather", [f"{n}__xs", "_hw_axes"], [f"{n}__xhw"], axis=0),
                helper.make_node("Shape", [ref], [f"{n}__rs"]),
                helper.make_node("Gather", [f"{n}__rs", "_hw_axes"], [f"{n}__rhw"], axis=0),
                helper.make_node("Sub", [f"{n}__xhw", f"{n}__rhw"], [f"{n}__d"]),
                helper.make_node("Div", [f"{n}__d", "_two"], [f"{n}__start"]),
                helper.make_node("Add", [f"{n}__start", f"{n}__rhw"], [f"{n}__end"]),
                helper.make_node("Slice", [x, f"{n}__start", f"{n}__end", "_hw_axes"],
                                 outs[:1], name=n),
            ]
        else:
            raise ConvertError(f"layer '{lay.name}' has type '{kind}', which --convert-hed "
                               "does not convert (HED uses Convolution, ReLU, Pooling, "
                               "Deconvolution, Crop, Concat, Sigmoid)")
        for t, o in zip(lay.top, outs, strict=True):
            current[t] = o
        last = lay
    if last is None or not inputs:
        raise ConvertError(f"{prototxt} declares no input or no layer")
    out_name = current[last.top[0]]
    graph = helper.make_graph(
        nodes, net.name or "hed", inputs,
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT,
                                       [1, None, "height_out", "width_out"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="evalkit edges --convert-hed")
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
