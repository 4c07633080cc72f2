package dev.kiln.mxnet;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;
import dev.kiln.engine.KilnException;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.op.Ops;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.FuzzGen;
import dev.kiln.testutil.FuzzGraphs;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * A differential operator fuzzer against the real MXNet 1.9.1: every Kiln operator that MXNet also
 * registers is called imperatively in both engines with the same seeded random attributes and
 * inputs, and the outcomes are compared.
 *
 * <p>Inputs have rank 1 to 4 and no empty dimension (with NumPy shapes off, MXNet 1.x reads a 0
 * dimension and a rank-0 shape as "unknown"), dtypes float32/float64/float16/int32/uint8, and small
 * values exact in every dtype. Attribute values are mostly sane (an operator's choices, small
 * integers and tuples, a few boundary values) so that most calls run on both sides.
 *
 * <p>Outcomes: both ran (outputs compared: count, shapes, dtypes, then values: integers exactly,
 * float32/float64 to {@code 1e-4 + 1e-4 |mx|}, float16 to {@code 1e-2 + 1e-2 |mx|}; random
 * operators only by shape and dtype), both refused, only MXNet ran (Kiln refuses what MXNet takes),
 * only Kiln ran (Kiln takes what MXNet refuses). A call with float32/float64 inputs that ran on both
 * is also bound as a one-op graph in both engines (Kiln's executor, MXNet's legacy executor, from
 * the symbol JSON Kiln writes) and run forward and backward with the same random head gradients;
 * the gradients of every argument must agree to {@code 1e-3 + 1e-3 |mx|}. Each mismatch and one-sided outcome is recorded
 * with the call; {@link #KNOWN} lists the differences Kiln makes on purpose
 * (docs/mxnet-differences.md), which are counted but not reported.
 *
 * <p>MXNet may abort the process on inputs it does not check, so callers run this in a JVM of its
 * own ({@link MxOpFuzzTest}). Not thread-safe.
 */
final class MxOpFuzz {
    /** Calls whose outputs would exceed this many elements are not made. */
    static final long MAX_OUT = FuzzGraphs.MAX_OUT;

    /** What a run found, per operator and in total. */
    record Report(int calls, int bothRan, int bothRefused, int known, List<String> mismatches, List<String> kilnOnly,
            List<String> mxOnly, Map<String, int[]> perOp, int gradients) {
        String summary() {
            return "mx op fuzz: " + calls + " calls, " + bothRan + " ran on both, " + bothRefused + " refused by both, " + known
                    + " known differences, " + mismatches.size() + " mismatches, " + kilnOnly.size() + " ran in Kiln only, "
                    + mxOnly.size() + " ran in MXNet only, " + gradients + " backward passes compared";
        }
    }

    /**
     * One call as the known differences see it: the outcome on each side and the detail found;
     * {@code nonFinite}: some input value is NaN or infinite (main's {@code specials=N}).
     */
    record Call(String op, Map<String, String> attrs, List<DType> types, String kilnError, String mxError, String detail,
            boolean kilnEmpty, boolean nonFinite) {
        Call(String op, Map<String, String> attrs, List<DType> types, String kilnError, String mxError, String detail,
                boolean kilnEmpty) {
            this(op, attrs, types, kilnError, mxError, detail, kilnEmpty, false);
        }

        boolean kilnSays(String... parts) {
            return kilnError != null && Arrays.stream(parts).anyMatch(kilnError::contains);
        }

        boolean mxSays(String... parts) {
            return mxError != null && Arrays.stream(parts).anyMatch(mxError::contains);
        }
    }

    /** A difference Kiln makes on purpose (docs/mxnet-differences.md), and how to recognise it. */
    record Known(String reason, java.util.function.Predicate<Call> matches) {}

    static final List<Known> KNOWN = List.of(
            new Known("Cast to an integer type saturates (MXNet: C++'s undefined conversion, x86 wraps)",
                    c -> c.op.toLowerCase().contains("cast") && c.detail != null && c.detail.contains("in Kiln")
                            && c.attrs.getOrDefault("dtype", "").matches("u?int.*")),
            new Known("SoftmaxActivation(instance) normalises all non-batch elements (MXNet: the last axis forward)",
                    c -> c.op.equals("SoftmaxActivation") && !"channel".equals(c.attrs.get("mode"))),
            new Known("Kiln takes every dtype where MXNet's kernels refuse some",
                    c -> c.mxSays("does not support float16", "only support floating point", "data type do not match",
                            "unknown type for MKLDNN", "not supported for this type", "dot only supports", "Unsupported data type")),
            new Known("None for a parameter means its default (MXNet's parser refuses it for booleans)",
                    c -> c.attrs.containsValue("None") && c.mxSays("value='None'", "bad optional access", "Invalid Input: 'None'")),
            new Known("empty results (MXNet 1.x's legacy shapes read a 0 dimension as unknown)",
                    c -> c.kilnEmpty && c.mxSays("inferring shapes failed", "shape inference failed", "shape_is_known")),
            new Known("refusals documented in docs/mxnet-differences.md",
                    c -> c.kilnSays("nsize must be odd", "Target shape size is different", "is not a permutation",
                            "differs from the input type")),
            new Known("16-bit optimizer updates compute in float32 (MXNet: half arithmetic)",
                    c -> c.op.contains("_update") && c.types.contains(DType.FLOAT16) && c.detail != null),
            new Known("sparse storage types are refused (Kiln is dense only)", c -> c.kilnSays("is not supported (dense only)")),
            new Known("a zero gradient stays zero through a backward op (MXNet computes some on zeros, 0/0 gives NaN, and sign's "
                    + "gradient is g * 0, NaN for an infinite g)",
                    c -> c.op.equals("graph") && c.detail != null && c.detail.contains("NaN in MXNet")
                            && Stream.of("ones_like", "zeros_like", "stop_gradient", "BlockGrad", "argmax", "argmin", "sign {",
                                    "floor {", "ceil {", "round {", "rint {", "fix {", "trunc {", "logical_not {")
                                    .anyMatch(c.attrs.get("graph")::contains)),
            new Known("MXNet's take backward refuses some gradient requests ('wrong req')", c -> c.mxSays("wrong req")),
            new Known("float16 _arange with a fractional start or step: MXNet's half kernel truncates both to integers",
                    c -> c.op.equals("_arange") && "float16".equals(c.attrs.get("dtype")) && Stream.of("start", "step")
                            .map(k -> number(c.attrs.getOrDefault(k, "1"))).anyMatch(v -> v != Math.rint(v))
                            && c.detail != null),
            new Known("amp_multicast casts float16/bfloat16/float32 inputs to the widest of them (MXNet starts from the first input's type,"
                    + " so a first float64 or integer input becomes the type of the float16 ones)",
                    c -> c.op.equals("amp_multicast") && (integral(c.types) || c.types.contains(DType.FLOAT64)) && c.detail != null),
            new Known("MXNet's planner gives an in-place request some of its kernels refuse", c -> c.mxSays("== kWriteTo")),
            new Known("MXNet's planner gives a null request to a forward kernel that refuses it (an output only ones_like reads)",
                    c -> c.op.equals("graph") && c.mxSays("req[0] != kNullOp")),
            new Known("MXNet's RNN miscounts its inputs when its parameters come from another node (in a graph)",
                    c -> c.mxSays("in_data.size() == num_inputs")),
            new Known("a non-finite gradient through a branch not taken (max/min/clip/abs) gives 0 (MXNet: 0 * NaN = NaN)",
                    c -> c.op.equals("graph") && c.detail != null && c.detail.matches(".*NaN in MXNet, -?[0-9][0-9.E-]* in Kiln.*")
                            && c.attrs.get("graph").matches(".*(aximum|inimum|max|min|clip|abs|relu|hard_sigmoid|smooth_l1).*")),
            new Known("InstanceNorm over one element: its gradient is 0 (MXNet: 0 * inf = NaN)",
                    c -> c.op.equals("graph") && c.detail != null && c.detail.contains("NaN in MXNet")
                            && c.attrs.get("graph").contains("InstanceNorm")),
            new Known("all_finite and multi_all_finite have no gradient in MXNet (Kiln: none flows through them, zeros)",
                    c -> c.mxSays("all_finite is non-differentiable")),
            new Known("transpose takes more than 6 dimensions", c -> c.mxSays("Transpose support at most 6 dimensions")),
            new Known("SoftmaxOutput of 1-D data: MXNet's legacy shapes cannot hold its 0-d label",
                    c -> c.op.equals("graph") && c.mxSays("inferring shapes failed") && c.attrs.get("graph").contains("Softmax")),
            new Known("SoftmaxOutput's label is (N,), one per row (MXNet infers the data's shape without its last axis)",
                    c -> c.mxSays("Shape inconsistent, Provided = [") && (c.op.equals("SoftmaxOutput") || c.op.equals("Softmax")
                            || c.op.equals("graph") && c.attrs.get("graph").contains("Softmax"))),
            new Known("PReLU inside a graph: MXNet runs it in place, so its gamma gradient reads the output (gamma times too small)",
                    c -> c.op.equals("graph") && c.attrs.get("graph").contains("prelu") && c.detail != null
                            && c.detail.contains(": gradient of ")),
            new Known("Kiln takes negative axes in transpose's and Dropout's axes (in a graph)",
                    c -> c.op.equals("graph") && c.mxSays("must be in range")
                            && (c.attrs.get("graph").contains("transpose") || c.attrs.get("graph").contains("Dropout"))),
            new Known("an integer mean divides the exact sum (MXNet divides the sum wrapped in the type)",
                    c -> c.op.equals("mean") && integral(c.types) && c.detail != null),
            new Known("Crop's h_w must hold exactly (height, width)", c -> c.op.equals("Crop") && c.kilnSays("must have 2 values")),
            new Known("FullyConnected's bias of shape (num_hidden, 1) has a gradient (MXNet's backward fails on it)",
                    c -> c.op.equals("FullyConnected") && c.mxSays("dimension do not match target dimension")),
            new Known("Embedding's indices get a zero gradient (MXNet refuses a gradient request for them)",
                    c -> c.op.equals("Embedding") && c.mxSays("doesn't support calculate data gradient")),
            new Known("LeakyReLU with a negative slope: the gradient tests the input's sign (MXNet tests the output's)",
                    c -> c.op.equals("LeakyReLU") && c.detail != null && c.detail.startsWith("backward")
                            && number(c.attrs.getOrDefault("slope", "0.25")) < 0),
            new Known("UpSampling's workspace and num_filter are checked against their declared ranges (MXNet's nearest mode skips them)",
                    c -> c.op.equals("UpSampling") && c.kilnSays("for parameter 'workspace'", "for parameter 'num_filter'")),
            new Known("an integer result that is no number (sqrt of a negative, log 0) gives 0 (MXNet: C++'s undefined cast)",
                    c -> c.detail != null && (c.detail.contains("-2.147483648E9 in MXNet, 0.0 in Kiln")
                            || c.detail.contains("-9.223372036854776E18 in MXNet, 0.0 in Kiln"))),  // int32 / int64 (shape_array)
            new Known("a scalar or bound beyond the integer type converts by Kiln's rule (MXNet: C++'s undefined cast)",
                    c -> c.detail != null && integral(c.types) && Stream.of("scalar", "a_min", "a_max", "start", "step")
                            .anyMatch(p -> Math.abs(number(c.attrs.get(p))) >= 2147483648.0)),
            new Known("a creation value beyond the integer type converts by Kiln's rule (MXNet: C++'s undefined cast)",
                    c -> c.detail != null && (c.op.equals("_full") || c.op.equals("_linspace"))
                            && c.attrs.getOrDefault("dtype", "").matches("u?int.*") && Stream.of("value", "start", "stop")
                            .anyMatch(p -> c.attrs.containsKey(p) && Math.abs(number(c.attrs.get(p))) >= 2147483648.0)),
            new Known("_linspace with a huge bound: MXNet's parameter parser reads 1e+30 as 9.999999999999999e29 (Kiln: the nearest double)",
                    c -> c.op.equals("_linspace") && c.detail != null
                            && c.attrs.values().stream().anyMatch(v -> Math.abs(number(v)) >= 1e30)),
            new Known("selu's gradient is y + lambda*alpha for x <= 0 (MXNet's legacy LeakyReLU: lambda*(y + alpha))",
                    c -> c.op.equals("LeakyReLU") && "selu".equals(c.attrs.get("act_type")) && c.detail != null
                            && c.detail.startsWith("backward")),
            new Known("MakeLoss(normalization=batch) divides by the batch size, shape[0], as documented (MXNet's code: the "
                    + "product of all dimensions but the last)",
                    c -> (c.op.equalsIgnoreCase("makeloss") || c.op.equals("make_loss")) && c.detail != null
                            && c.detail.startsWith("backward") && "batch".equals(c.attrs.get("normalization"))),
            new Known("MXNet 1.9's legacy executor cannot build sort's backward (_backward_topk reads axis='')",
                    c -> c.op.equals("sort") && c.mxSays("_backward_topk")),
            new Known("_grad_add (the gradient pass's accumulation) has a gradient in Kiln",
                    c -> c.op.equals("_grad_add") && c.mxSays("non-differentiable")),
            new Known("Kiln takes negative axes in Dropout's axes and transpose's axes",
                    c -> (c.op.equals("Dropout") || c.op.equals("transpose")) && c.mxSays("must be in range")),
            new Known("1-D Pooling with pooling_convention=same (MXNet's shape inference reads a second kernel dimension)",
                    c -> c.mxSays("must be in range") && (c.op.equals("Pooling") && "same".equals(c.attrs.get("pooling_convention"))
                            || c.op.equals("graph") && c.attrs.get("graph").contains("pooling_convention=same"))),
            new Known("LRN takes a window wider than the channels (the sum stops at the edges)",
                    c -> c.mxSays("local size must be smaller than nchannels")),
            new Known("positions of equal values (indices, and where gradients go): Kiln's sorts keep their order (stable),"
                    + " MXNet's std::sort does not past 16 elements",
                    c -> c.detail != null && Set.of("argsort", "sort", "topk").contains(c.op) && (c.detail.contains("gradient of")
                            || c.op.equals("argsort") || c.op.equals("topk") && !"value".equals(c.attrs.get("ret_typ"))
                            && !("both".equals(c.attrs.get("ret_typ")) && c.detail.contains(": output 0[")))),
            new Known("NaN sorts after every number in sort/argsort/topk (MXNet's comparisons leave its place, and with it the"
                    + " order of the numbers, undefined)",
                    c -> c.detail != null && Set.of("argsort", "sort", "topk").contains(c.op) && (c.detail.contains("NaN") || c.nonFinite)),
            new Known("with infinite inputs, an expression with two infinities is NaN or infinite by evaluation order (NaN in one"
                    + " engine, an infinity in the other)",
                    c -> c.detail != null && c.nonFinite && c.detail.matches(".* is (NaN in MXNet, -?Infinity|-?Infinity in MXNet, NaN) in Kiln.*")),
            new Known("NaN or infinite indices follow Kiln's rule (NaN row 0, beyond int64 the first or last row; MXNet: C++'s"
                    + " undefined cast)",
                    c -> c.detail != null && c.nonFinite && Set.of("take", "pick", "Embedding", "one_hot", "batch_take",
                            "unravel_index", "_unravel_index", "ravel_multi_index", "_ravel_multi_index").contains(c.op)),
            new Known("equal values in sort order: Kiln keeps their positions' order, MXNet's may not (in a graph: the outputs,"
                    + " and gradients where positions are used as values)",
                    c -> c.op.equals("graph") && c.detail != null && (c.detail.contains(": output ") || c.detail.contains(": gradient of "))
                            && c.attrs.get("graph").matches(".*(argsort|topk|sort).*")),
            new Known("take(mode=raise) truncates an index toward zero before its bounds check",
                    c -> c.op.equals("take") && c.mxSays("indices out of bound") && c.types.size() > 1
                            && !integral(List.of(c.types.get(1)))),
            new Known("_arange's length is computed in double (MXNet rounds huge bounds through float32)",
                    c -> c.op.equals("_arange") && c.detail != null
                            && c.attrs.values().stream().anyMatch(v -> Math.abs(number(v)) >= 1e30)),
            new Known("an integer power beyond int64 saturates before wrapping (MXNet: float overflow, C++'s undefined cast)",
                    c -> c.detail != null && integral(c.types) && c.op.toLowerCase().contains("power")),
            new Known("float16 computes in float32 with float parameters unrounded (MXNet: half_t(param) in half arithmetic)",
                    c -> c.detail != null && (c.types.contains(DType.FLOAT16) || "float16".equals(c.attrs.get("dtype")))
                            && (c.attrs.containsKey("scalar")
                            || c.attrs.values().stream().mapToDouble(MxOpFuzz::number).anyMatch(v -> Math.abs(v) > 65504))),
            new Known("float16 mean over more than 65,504 elements: MXNet divides by the count as a half (infinity) and gives 0",
                    c -> c.op.equals("mean") && c.types.contains(DType.FLOAT16) && c.detail != null && c.detail.contains(" is 0.0 in MXNet")),
            new Known("Reshape with -1 after -2: MXNet mis-infers the -1 ((2, 3, 4) by (-2, -1) gives it (2, 1, 4, 1))",
                    c -> c.op.equalsIgnoreCase("reshape") && c.attrs.getOrDefault("shape", "").replace(" ", "").matches(".*-2,.*-1.*")),
            new Known("prod's and nanprod's gradients are exact where a group holds a zero: the product of the other elements "
                    + "(MXNet's ograd * y / x gives 0/0 = NaN at the zero, 0 * inf elsewhere)",
                    c -> c.detail != null && c.detail.contains("is NaN in MXNet") && ((c.op.equals("prod") || c.op.equals("nanprod"))
                            && c.detail.startsWith("backward") || c.op.equals("graph") && c.attrs.get("graph").matches(".*prod \\{.*"))),
            new Known("an integer product beyond 2^53 is computed in double and converted by Kiln's rule (MXNet multiplies "
                    + "in the integer type and wraps)",
                    c -> (c.op.equals("prod") || c.op.equals("nanprod")) && integral(c.types) && c.detail != null),
            new Known("L2 norm: Kiln computes sqrt(sum x^2) (MXNet's scaled sum of squares divides by the largest magnitude: "
                    + "in integers, so norm([3, 4]) is 4 there, and inf / inf gives NaN for an infinite element)",
                    c -> c.op.equals("norm") && (integral(c.types) || c.nonFinite) && c.detail != null),
            new Known("hard_sigmoid inside a graph: MXNet writes its backward in place over an output gradient that another "
                    + "input shares (a skip connection through ElementWiseSum then reads alpha * g instead of g)",
                    c -> c.op.equals("graph") && c.attrs.get("graph").contains("hard_sigmoid") && c.detail != null
                            && c.detail.contains(": gradient of ")),
            new Known("softmax (softmin) with a negative temperature subtracts the largest x / T (-x / T) (MXNet subtracts "
                    + "max(x) (max(-x)): an infinite input gives inf - inf = NaN there, the limit here)",
                    c -> (c.op.equals("softmax") || c.op.equals("log_softmax") || c.op.equals("softmin")) && c.nonFinite
                            && c.detail != null
                            && number(c.attrs.getOrDefault("temperature", "1")) < 0),
            new Known("scalar mod x with |scalar / x| beyond 2^53: Kiln's fmod is exact (MXNet's result is not: 1e30 mod 0.3046875 "
                    + "gives 0.1015625 there, 0.296875 exactly)",
                    c -> (c.op.equals("_rmod_scalar") || c.op.equals("_RModScalar")) && c.detail != null
                            && Math.abs(number(c.attrs.getOrDefault("scalar", "1"))) >= 9007199254740992.0),
            new Known("norm's gradient is 0 where the norm is 0 (MXNet: 0 / 0 = NaN)",
                    c -> c.op.equals("norm") && c.detail != null && c.detail.startsWith("backward") && c.detail.contains("NaN in MXNet")),
            new Known("_contrib_bipartite_matching with equal (float16-rounded) or NaN scores: Kiln matches ties by position and "
                    + "NaN last (MXNet's unstable sort leaves the order of equal and NaN scores undefined)",
                    c -> c.op.equals("_contrib_bipartite_matching") && c.detail != null
                            && (c.nonFinite || c.types.contains(DType.FLOAT16))),
            new Known("digamma at a pole (0, -1, -2, ...) is NaN, so gamma's and gammaln's gradients there are NaN (MXNet's "
                    + "cephes psi gives +DBL_MAX: g * inf in float32, g * 1.8e308 in float64)",
                    c -> (c.op.equals("gamma") || c.op.equals("gammaln")) && c.detail != null && c.detail.contains("NaN in Kiln")),
            new Known("Pooling refuses a kernel dimension below 1 (MXNet pools windows of negative size), and a stride or pad"
                    + " with another number of dimensions than kernel (MXNet does not check)",
                    c -> c.op.equals("Pooling") && c.kilnError != null && (c.kilnSays("must have as many dims as kernel")
                            || !"True".equals(c.attrs.get("global_pool")) && c.attrs.getOrDefault("kernel", "").matches(".*(-|\\b0\\b).*"))),
            new Known("rrelu's mask holds the slope used at inference too (MXNet leaves it unwritten)",
                    c -> c.op.equals("LeakyReLU") && "rrelu".equals(c.attrs.get("act_type")) && c.detail != null
                            && c.detail.contains(": output 1[")),
            new Known("MXNet's tile backward reduces at most a fixed number of axes", c -> c.mxSays("Too many reduction axes")),
            new Known("ctx of the creation ops is ignored (the executor's device is used)", c -> c.mxSays("Invalid context string")),
            new Known("PReLU of 1-D data takes a gamma of shape (1,)",
                    c -> c.op.equals("LeakyReLU") && c.kilnSays("'gamma': Shape inconsistent")),
            new Known("make_loss is MakeLoss, whose parameters are checked (MXNet's make_loss ignores unknown ones)",
                    c -> c.op.equals("make_loss") && c.kilnSays("for parameter")),
            new Known("Reshape needs shape or target_shape (MXNet makes a 0-d array of a one-element input)",
                    c -> c.op.equalsIgnoreCase("reshape") && c.kilnSays("cannot infer the shape of output")),
            new Known("reverse (flip) takes negative axes (MXNet's kernel refuses them)",
                    c -> c.mxSays("must be in range") && (c.op.equals("reverse") || c.op.equals("flip") || c.op.equals("graph")
                            && (c.attrs.get("graph").contains("reverse {") || c.attrs.get("graph").contains("flip {")))),
            new Known("broadcast_axis to a size of 0 gives an empty result (MXNet 1.x's legacy shapes read 0 as unknown and fail)",
                    c -> c.kilnEmpty && (c.op.equals("broadcast_axis") || c.op.equals("broadcast_axes")) && c.mxError != null),
            new Known("_contrib_BilinearResize2D refuses output sizes beyond 32767 (MXNet wraps them in an int16: 80000 rows "
                    + "become 14464) and a like input that is not 4-D (MXNet reads dims 2 and 3 of any rank)",
                    c -> c.op.equals("_contrib_BilinearResize2D") && c.kilnSays("int16", "of the 4-D input like")),
            new Known("_contrib_AdaptiveAvgPooling2D refuses an output_size of more than two values (MXNet pools to 1x1)",
                    c -> c.op.equals("_contrib_AdaptiveAvgPooling2D") && c.kilnSays("one size or (height, width)")),
            new Known("ROIPooling refuses a roi whose batch index is outside the data or NaN, or whose coordinate is NaN "
                    + "(MXNet pools it to 0), and clamps infinite coordinates (MXNet: C++'s undefined cast)",
                    c -> c.op.equals("ROIPooling") && (c.kilnSays("batch index", "not a number") || c.nonFinite)),
            new Known("float16 _contrib_arange_like with a fractional start or step: MXNet's half kernel truncates both to integers",
                    c -> c.op.equals("_contrib_arange_like") && c.types.contains(DType.FLOAT16) && Stream.of("start", "step")
                            .map(k -> number(c.attrs.getOrDefault(k, k.equals("step") ? "1" : "0"))).anyMatch(v -> v != Math.rint(v))
                            && c.detail != null),
            new Known("_contrib_arange_like refuses repeat < 1 and ravel_multi_index / unravel_index shape entries < 1 (MXNet "
                    + "divides by them)", c -> c.kilnSays("repeat must be positive", "must have positive entries")),
            new Known("degrees / radians multiply by 180 / pi rounded once to the data's type (MXNet by float32's pi: in float64 "
                    + "57.2957763671875, 5.5e-8 off), which an ill-conditioned op downstream (cos of a large argument, tan near a "
                    + "pole) amplifies",
                    c -> c.op.equals("graph") && c.detail != null
                            && (c.attrs.get("graph").contains("degrees {") || c.attrs.get("graph").contains("radians {"))),
            new Known("MXNet 1.9's legacy executor gives moments garbage in some graphs, e.g. NaN or 1e36 for the mean of 0/1 values, "
                    + "or 0.996 for the variance of all-ones when the variance alone is a head (run directly, MXNet agrees with Kiln)",
                    c -> c.op.equals("graph") && c.detail != null && c.attrs.get("graph").contains("moments {")),
            new Known("cumsum into float16 accumulates in float32, rounding each sum once (MXNet rounds every partial sum to half)",
                    c -> c.detail != null && ((c.op.equals("cumsum") || c.op.equals("_np_cumsum"))
                            && ("float16".equals(c.attrs.get("dtype")) || !c.attrs.containsKey("dtype") && c.types.contains(DType.FLOAT16))
                            || c.op.equals("graph") && c.attrs.get("graph").matches(".*cumsum \\{[^}]*dtype=float16.*"))),
            new Known("moments takes float32/float64 (and float16 through float32) data only (MXNet computes integer means in integers)",
                    c -> c.op.equals("moments") && c.kilnSays("is not supported by this kernel")),
            new Known("cumsum takes negative axes and moments axes=None (every axis); MXNet 1.9 refuses both",
                    c -> c.mxSays("Empty axes is not supported") || c.mxSays("must be in range")
                            && (c.op.equals("cumsum") || c.op.equals("_np_cumsum")
                                    || c.op.equals("graph") && c.attrs.get("graph").matches(".*cumsum \\{[^}]*axis=-.*"))),
            new Known("khatri_rao takes float16 (through float32; MXNet: 'Not implmented!')",
                    c -> c.op.equals("khatri_rao") && c.mxSays("Not implmented")),
            new Known("argmax_channel, batch_take and khatri_rao have a gradient (zero, pick's, the product rule's: MXNet 1.9 registers none)",
                    c -> c.mxSays("argmax_channel is non-differentiable", "batch_take is non-differentiable",
                            "khatri_rao is non-differentiable")));

    private static boolean integral(List<DType> types) {
        return types.stream().anyMatch(t -> t == DType.INT32 || t == DType.UINT8);
    }

    private static double number(String s) {
        try {
            return s == null ? 0 : Double.parseDouble(s);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private final Random r;
    private final FuzzGen gen;
    private int calls, bothRan, bothRefused, known, gradients;
    private final List<String> mismatches = new ArrayList<>();
    private final List<String> kilnOnly = new ArrayList<>();
    private final List<String> mxOnly = new ArrayList<>();
    private final Map<String, int[]> perOp = new TreeMap<>();

    private MxOpFuzz(long seed) {
        this.r = new Random(seed);
        this.gen = new FuzzGen(r, POLICY).withDimMax(dimMax).withSpecials(specialOdds);
    }

    /** Largest input dimension drawn (main's {@code dims=N}); large ones reach the kernels' threaded and blocked paths. */
    private static int dimMax = 5;

    /** One float input value in this many is NaN or an infinity (main's {@code specials=N}; 0: none). */
    private static int specialOdds;

    /** MXNet's registered operator names ({@code MXListAllOpNames}). */
    static Set<String> mxOps() {
        IntByReference n = new IntByReference();
        PointerByReference names = new PointerByReference();
        MxOracle.call("MXListAllOpNames", n, names);
        Set<String> out = new HashSet<>();
        for (Pointer p : names.getValue().getPointerArray(0, n.getValue())) {
            out.add(p.getString(0));
        }
        return out;
    }

    /** {@code perOp} calls of every operator both engines register (or of {@code only}, when given). */
    static Report run(long seed, int perOp, Set<String> only) {
        MxOpFuzz f = new MxOpFuzz(seed);
        Set<String> mx = mxOps();
        for (String op : Ops.list()) {
            if (!mx.contains(op) || (only != null && !only.contains(op))) {
                continue;
            }
            for (int i = 0; i < perOp; i++) {
                f.call(op);
            }
        }
        return new Report(f.calls, f.bothRan, f.bothRefused, f.known, f.mismatches, f.kilnOnly, f.mxOnly, f.perOp, f.gradients);
    }

    /** Sane calls MXNet 1.x can represent: rank 1 to 4, no empty dimension, no integer zero (SIGFPE). */
    private static final FuzzGen.Policy POLICY = new FuzzGen.Policy(
            new String[] {"-1", "0", "0", "1", "1", "1", "2", "2", "3", "4", "5", "-2", "64"},
            new String[] {"0", "1", "1", "0.5", "-0.5", "-1", "2", "3", "1e-07", "0.9", "0.999", "1e+30"},
            new String[0], new String[] {"None", "float32", "float16", "int32"}, 10, 4, false,
            new DType[] {DType.FLOAT32, DType.FLOAT32, DType.FLOAT32, DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.INT32,
                DType.UINT8},
            4, true, 256);

    private void call(String op) {
        FuzzGen.Call c = gen.call(op);
        if (c == null) {
            return;
        }
        String what = c.describe();
        Outcome k = kiln(op, c.attrs(), c.shapes(), c.types(), c.values());
        if (k == Outcome.TOO_LARGE || killsMxnet(op, c.attrs(), c.types()) || killsMxnetByInput(op, c.attrs(), c.shapes(), c.values())) {
            return;
        }
        calls++;
        int[] counts = perOp.computeIfAbsent(op, x -> new int[4]);
        if (System.getenv("MXFUZZ_TRACE") != null) {  // the last line printed before MXNet dies names the call
            System.out.println("CALL " + what);
            System.out.flush();
        }
        Outcome m = System.getenv("MXFUZZ_NO_MXNET") != null ? new Outcome(null, null, null, "MXNet not called")
                : mxnet(op, c.attrs(), c.shapes(), c.types(), c.values());
        if (k.results == null && m.results == null) {
            bothRefused++;
            counts[1]++;
        } else if (isKnown(new Call(op, c.attrs(), c.types(), k.error, m.error, null, k.empty(), nonFinite(c.values())))) {
            known++;
        } else if (k.results == null) {
            mxOnly.add(what + ": Kiln refused: " + k.error);
            counts[2]++;
        } else if (m.results == null) {
            kilnOnly.add(what + ": MXNet refused: " + firstLine(m.error));
            counts[3]++;
        } else {
            bothRan++;
            counts[0]++;
            compare(new Call(op, c.attrs(), c.types(), null, null, null, false, nonFinite(c.values())), what, m, k);
            if (!FuzzGen.isRandom(op, c.attrs()) && !c.types().isEmpty()
                    && c.types().stream().allMatch(t -> t == DType.FLOAT32 || t == DType.FLOAT64)) {
                compareGradients(op, c.attrs(), c.shapes(), c.types(), c.values(), k, what);
            }
        }
    }

    /**
     * A call MXNet would die of: SIGFPE from an integer division or modulo by a scalar that truncates
     * to 0, or from a parameter it divides by before checking it (num_group, stride, dilate,
     * num_outputs, scale of 0, _random_randint's high - low); heap corruption from transpose with a repeated axis (MXNet sizes the
     * output from the axes, (0, 0) of a (2, 5) array gives (2, 2), and its kernel writes all ten values); an integer
     * division by _contrib_arange_like's repeat or an unravel_index shape entry of 0.
     */
    private static boolean killsMxnet(String op, Map<String, String> attrs, List<DType> types) {
        if (op.equals("transpose") && attrs.containsKey("axes")) {
            List<String> axes = Arrays.stream(attrs.get("axes").replaceAll("[()\\[\\] ]", "").split(",")).filter(a -> !a.isEmpty()).toList();
            if (axes.size() != new HashSet<>(axes).size()) {
                return true;
            }
        }
        // _contrib_arange_like divides positions by repeat; unravel_index divides by the shape's entries
        if (Set.of("unravel_index", "_unravel_index", "gather_nd", "scatter_nd", "batch_take", "softmax_cross_entropy").contains(op)
                && types.isEmpty()) {
            return true;  // in a graph: the input's rank and index values are not known here (killsMxnetByInput)
        }
        String zeroDivisor = op.equals("_contrib_arange_like") ? attrs.get("repeat")
                : op.equals("unravel_index") || op.equals("_unravel_index") ? attrs.get("shape") : null;
        if (zeroDivisor != null && (zeroDivisor.matches(".*(^|[^0-9.-])0([^0-9.]|$).*") || zeroDivisor.matches("-?0?\\.[0-9]*"))) {
            return true;
        }
        for (String divisor : List.of("num_group", "num_groups", "num_outputs", "scale", "stride", "dilate")) {
            String v = attrs.get(divisor);
            if (v != null && v.matches(".*(^|[^0-9.-])0([^0-9.]|$).*")) {
                return true;
            }
        }
        // _random_randint draws low + r % (high - low): SIGFPE for low == high, which its check lets through
        if (op.equals("_random_randint") || op.equals("random_randint")) {
            String lo = attrs.get("low"), hi = attrs.get("high");
            if (lo != null && hi != null && number(lo) == number(hi)) {
                return true;
            }
        }
        String lower = op.toLowerCase();
        // in a graph (no types given) an integer array can reach it through shape_array / size_array
        boolean maybeInt = types.isEmpty() || types.contains(DType.INT32) || types.contains(DType.UINT8);
        if (!(lower.contains("div") || lower.contains("mod")) || !maybeInt) {
            return false;
        }
        // x86 converts a scalar beyond int32 to INT32_MIN, whose low byte (uint8, int8) is 0
        double v = number(attrs.getOrDefault("scalar", "1"));
        return (long) v == 0 || Math.abs(v) >= 2147483648.0;
    }

    /**
     * unravel_index does not check its input's rank: it sizes the output from the first dimension and
     * writes one column per input element (heap corruption beyond a 1-D input); batch_take beyond 2-D
     * reads past its data, softmax_cross_entropy at a label outside the classes. gather_nd reads and
     * scatter_nd and gather_nd's backward write at coordinates they do not check (scatter_nd and the
     * backward read negative ones as they are): calls with a coordinate outside [0, size) are not made.
     */
    private static boolean killsMxnetByInput(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values) {
        if (op.equals("unravel_index") || op.equals("_unravel_index")) {
            return !shapes.isEmpty() && shapes.get(0).length != 1;
        }
        if (op.equals("softmax_cross_entropy") && shapes.size() == 2 && shapes.get(0).length == 2) {
            // MXNet reads the softmax at the label without a check (Kiln refuses the label)
            long c = shapes.get(0)[1];
            return Arrays.stream(values.get(1)).anyMatch(v -> !(v > -1 && v < c));
        }
        if (op.equals("batch_take") && !shapes.isEmpty() && shapes.get(0).length > 2) {
            // MXNet checks the indices against a viewed as [rows, last dim] but its kernel reads a as
            // [shape[0], rest]: beyond 2-D it reads past the data unless the middle dims are 1
            long[] a = shapes.get(0);
            long rest = 1;
            for (int i = 1; i < a.length; i++) {
                rest *= a[i];
            }
            return rest != a[a.length - 1];
        }
        if (!(op.equals("gather_nd") || op.equals("scatter_nd")) || shapes.size() < 2 || shapes.get(1).length == 0) {
            return false;
        }
        long[] idx = shapes.get(1);
        long m = idx[0];
        long[] indexed = op.equals("gather_nd") ? shapes.get(0) : tuple(attrs.getOrDefault("shape", "()"));
        if (indexed == null) {
            return true;  // scatter_nd with a shape that is not a plain tuple
        }
        if (m < 1 || m > indexed.length) {
            return false;  // refused by both
        }
        long n = values.get(1).length / m;
        for (int j = 0; j < m; j++) {
            for (int i = 0; i < n; i++) {
                double v = values.get(1)[(int) (j * n + i)];
                if (!(v >= 0 && v <= indexed[j] - 1)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** "(2, 3)" as {2, 3}; null when some entry is not an integer. */
    private static long[] tuple(String text) {
        String[] parts = text.replaceAll("[()\\[\\] ]", "").split(",");
        List<Long> v = new ArrayList<>();
        for (String p : parts) {
            if (p.isEmpty()) {
                continue;
            }
            if (!p.matches("-?[0-9]+")) {
                return null;
            }
            v.add(Long.parseLong(p));
        }
        return v.stream().mapToLong(Long::longValue).toArray();
    }

    private static boolean nonFinite(List<double[]> values) {
        return values.stream().anyMatch(v -> Arrays.stream(v).anyMatch(x -> !Double.isFinite(x)));
    }

    private static boolean isKnown(Call c) {
        return KNOWN.stream().anyMatch(k -> k.matches.test(c));
    }

    private static String firstLine(String s) {
        if (s == null) {
            return null;
        }
        // MXNet's messages carry a stack trace after the first lines
        int st = s.indexOf("Stack trace");
        String t = st > 0 ? s.substring(0, st) : s;
        return t.replace('\n', ' ').trim();
    }

    private record Outcome(List<double[]> results, List<String> types, List<long[]> shapes, String error) {
        static final Outcome TOO_LARGE = new Outcome(null, null, null, "too large");

        /** Whether some output has no elements. */
        boolean empty() {
            return shapes != null && shapes.stream().anyMatch(sh -> Arrays.stream(sh).anyMatch(d -> d == 0));
        }
    }

    private Outcome kiln(String op, Map<String, String> attrs, List<long[]> shapes, List<DType> types, List<double[]> values) {
        try (NDScope scope = NDScope.open()) {
            NDArray[] in = new NDArray[shapes.size()];
            for (int i = 0; i < in.length; i++) {
                in[i] = NDArray.create(values.get(i), shapes.get(i)).asType(types.get(i));
            }
            List<NDArray> outs;
            try {
                outs = NDArray.invoke(op, attrs, in);
            } catch (KilnException | IllegalArgumentException e) {
                return new Outcome(null, null, null, e.getMessage());
            }
            long total = 0;
            for (NDArray o : outs) {
                total += o.size();
            }
            if (total > MAX_OUT) {
                return Outcome.TOO_LARGE;
            }
            List<double[]> res = new ArrayList<>();
            List<String> ts = new ArrayList<>();
            List<long[]> ss = new ArrayList<>();
            for (NDArray o : outs) {
                ts.add(o.dtype().mxName());
                ss.add(o.shape().dims());
                res.add(o.dtype() == DType.BFLOAT16 ? null : o.toDoubleArray());
            }
            return new Outcome(res, ts, ss, null);
        }
    }

    private Outcome mxnet(String op, Map<String, String> attrs, List<long[]> shapes, List<DType> types, List<double[]> values) {
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray[] in = new ai.djl.ndarray.NDArray[shapes.size()];
            for (int i = 0; i < in.length; i++) {
                in[i] = mxArray(m, values.get(i), shapes.get(i), types.get(i));
            }
            try {
                NDList out = MxOracle.invoke(m, op, attrs, in);
                List<double[]> res = new ArrayList<>();
                List<String> ts = new ArrayList<>();
                List<long[]> ss = new ArrayList<>();
                for (ai.djl.ndarray.NDArray o : out) {
                    ts.add(o.getDataType().toString());
                    ss.add(o.getShape().getShape());
                    res.add(o.getDataType() == DataType.BFLOAT16 ? null : o.toType(DataType.FLOAT64, false).toDoubleArray());
                }
                return new Outcome(res, ts, ss, null);
            } catch (RuntimeException e) {
                return new Outcome(null, null, null, String.valueOf(e.getMessage()));
            }
        }
    }

    private static DataType djl(DType t) {
        switch (t) {
            case FLOAT64: return DataType.FLOAT64;
            case FLOAT16: return DataType.FLOAT16;
            case INT32: return DataType.INT32;
            case UINT8: return DataType.UINT8;
            default: return DataType.FLOAT32;
        }
    }

    private void compare(Call call, String what, Outcome mx, Outcome k) {
        if (mx.results.size() != k.results.size()) {
            mismatch(call, what + ": " + mx.results.size() + " outputs in MXNet, " + k.results.size() + " in Kiln");
            return;
        }
        boolean random = FuzzGen.isRandom(call.op);
        for (int i = 0; i < mx.results.size(); i++) {
            // DJL names MXNet's bfloat16 (type flag 12) uint64
            boolean sameType = mx.types.get(i).equals(k.types.get(i)) || mx.types.get(i).equals("uint64") && k.types.get(i).equals("bfloat16");
            if (!Arrays.equals(mx.shapes.get(i), k.shapes.get(i)) || !sameType) {
                mismatch(call, what + ": output " + i + " is " + Arrays.toString(mx.shapes.get(i)) + " " + mx.types.get(i)
                        + " in MXNet, " + Arrays.toString(k.shapes.get(i)) + " " + k.types.get(i) + " in Kiln");
                continue;
            }
            String t = k.types.get(i);
            if (random || mx.results.get(i) == null || k.results.get(i) == null) {
                continue;
            }
            double tol = t.equals("float32") || t.equals("float64") ? 1e-4 : t.equals("float16") ? 1e-2 : 0;
            double[] x = mx.results.get(i), y = k.results.get(i);
            for (int j = 0; j < x.length; j++) {
                if (Double.compare(x[j], y[j]) != 0 && !(Math.abs(x[j] - y[j]) <= tol + tol * Math.abs(x[j]))) {
                    mismatch(call, what + ": output " + i + "[" + j + "] is " + x[j] + " in MXNet, " + y[j] + " in Kiln");
                    break;
                }
            }
        }
    }

    // ---- gradients: the op bound as a one-op graph in both engines, backward with the same head gradients ----

    private void compareGradients(String op, Map<String, String> attrs, List<long[]> shapes, List<DType> types, List<double[]> values,
            Outcome forward, String what) {
        Symbol[] vars = new Symbol[shapes.size()];
        Map<String, FuzzGraphs.Arr> in = new LinkedHashMap<>();
        for (int i = 0; i < vars.length; i++) {
            vars[i] = Symbol.variable("in" + i);
            in.put("in" + i, new FuzzGraphs.Arr(shapes.get(i), types.get(i), values.get(i)));
        }
        Symbol f;
        try {
            f = Symbol.create(op, "f", attrs, null, vars);
        } catch (KilnException | IllegalArgumentException e) {
            return;
        }
        List<FuzzGraphs.Arr> heads = new ArrayList<>();
        for (int j = 0; j < forward.shapes.size(); j++) {
            heads.add(head(forward.shapes.get(j), DType.fromName(forward.types.get(j))));
        }
        FuzzGraphs.Graph g = new FuzzGraphs.Graph(f, what, in, heads, Map.of(), 1, types.get(0));
        FuzzGraphs.Run k = FuzzGraphs.run(g, Context.cpu(), Map.of());
        String[] mxJson = new String[1];
        FuzzGraphs.Run m = mxRun(g, Map.of(), mxJson);
        String reload = k.error() == null && mxJson[0] != null ? reloaded(g, mxJson[0], Map.of(), k) : null;
        if (reload != null) {
            mismatches.add("backward of " + what + ": Kiln on the JSON MXNet wrote: " + reload);
        }
        Call call = new Call(op, attrs, types, k.error(), m.error(), null, false, nonFinite(values));
        if (k.error() != null && m.error() != null) {
            return;
        }
        if (k.error() != null || m.error() != null) {
            if (isKnown(call)) {
                known++;
            } else if (k.error() != null) {
                mxOnly.add("backward of " + what + ": Kiln refused: " + k.error());
            } else {
                kilnOnly.add("backward of " + what + ": MXNet refused: " + firstLine(m.error()));
            }
            return;
        }
        gradients++;
        compareValues(call, "backward of " + what + ": gradient of ", m.grads(), k.grads(), 1e-3);
    }

    // ---- graphs: chains of 2 to 5 random operators with skip connections, bound in both engines ----

    /**
     * Operators a random graph may use: both engines have them, they are deterministic, take an
     * input, and have no difference Kiln makes on purpose in float32/float64 (those are fuzzed alone).
     */
    private static boolean graphable(String op, Map<String, String> attrs) {
        if (op.equals("RNN") && number(attrs.getOrDefault("p", "0")) != 0) {
            return false;  // dropout between layers: random
        }
        if (op.equals("SequenceLast")) {
            return false;  // MXNet's SequenceLast backward corrupts its heap inside a graph (glibc aborts)
        }
        if (op.equals("RNN")) {
            return false;  // MXNet 1.9's RNN without MKL-DNN returns uninitialised memory (RnnOpTest checks MKL-DNN's)
        }
        String lower = op.toLowerCase();
        if (FuzzGen.isRandom(op, attrs) || lower.contains("update") || lower.contains("cast") || op.equals("_grad_add") || op.equals("sort")
                || op.equalsIgnoreCase("makeloss") || op.equals("make_loss") || op.equals("SoftmaxActivation")) {
            return false;
        }
        // known: Embedding's indices' gradient, None as a default, take(raise)'s truncation
        if (op.equals("Embedding") || attrs.containsValue("None") || op.equals("take") && "raise".equals(attrs.get("mode"))
                || attrs.getOrDefault("dtype", "").matches("u?int.*")  // integers in a graph risk MXNet's SIGFPE
                || attrs.values().stream().anyMatch(v -> Math.abs(number(v)) >= 1e30)  // rounding noise, ties
                || Math.abs(number(attrs.getOrDefault("scalar", "1"))) < 1e-6 && number(attrs.getOrDefault("scalar", "1")) != 0) {
            return false;
        }
        if (op.equals("LeakyReLU")) {
            return !"selu".equals(attrs.get("act_type")) && number(attrs.getOrDefault("slope", "0.25")) >= 0;
        }
        return true;
    }

    /** {@code count} random graphs: every output, gradient and auxiliary state must agree with MXNet's. */
    static Report runGraphs(long seed, int count) {
        MxOpFuzz f = new MxOpFuzz(seed);
        Set<String> mx = mxOps();
        List<String> pool = new ArrayList<>();
        for (String op : Ops.list()) {
            if (mx.contains(op)) {
                try {
                    if (!Ops.info(op).inputs().isEmpty()) {
                        pool.add(op);
                    }
                } catch (KilnException e) {
                    pool.add(op);  // variable inputs (num_args)
                }
            }
        }
        for (int g = 0; g < count; g++) {
            f.graph(pool);
        }
        return new Report(f.calls, f.bothRan, f.bothRefused, f.known, f.mismatches, f.kilnOnly, f.mxOnly, f.perOp, f.gradients);
    }

    private void graph(List<String> pool) {
        FuzzGraphs.Graph g = FuzzGraphs.build(gen, r, pool, (op, attrs) -> graphable(op, attrs) && !killsMxnet(op, attrs, List.of()));
        if (g == null || !FuzzGraphs.finiteInside(g)) {
            return;  // NaN / Inf inside: their paths differ on purpose (NaN rules are fuzzed op by op)
        }
        // gradient requests: write and null compared with MXNet over one or two passes (moving
        // statistics carry over); add requests checked in Kiln alone, against passes x the written
        // gradient: MXNet's add is wrong in places (a regression output's gradient comes out tripled,
        // readers of an accumulated entry see the sum; docs/mxnet-differences.md)
        Map<String, GradReq> written = g.written();
        String what = g.description() + " reqs " + written + (g.passes() > 1 ? " x2" : "");
        calls++;
        if (System.getenv("MXFUZZ_TRACE") != null) {  // the last line printed before MXNet dies names the graph
            System.out.println("CALL " + what);
            System.out.flush();
        }
        FuzzGraphs.Run k = FuzzGraphs.run(g, Context.cpu(), written);
        String[] mxJson = new String[1];
        FuzzGraphs.Run m = System.getenv("MXFUZZ_NO_MXNET") != null ? FuzzGraphs.Run.refused("MXNet not called") : mxRun(g, written, mxJson);
        if (k.error() == null && mxJson[0] != null) {
            // the symbol JSON MXNet writes back must load in Kiln as the same graph: same values, bit for bit
            String bad = reloaded(g, mxJson[0], written, k);
            if (bad != null) {
                mismatches.add(what + ": Kiln on the JSON MXNet wrote: " + bad);
            }
        }
        if (k.error() == null && g.reqs().containsValue(GradReq.ADD)) {
            String bad = FuzzGraphs.checkAdd(FuzzGraphs.run(g, Context.cpu(), g.reqs()), k, g.reqs(), g.passes(), 1e-5);
            if (bad != null) {
                mismatches.add(what + " with add requests " + g.reqs() + ": " + bad);
            }
        }
        Call call = new Call("graph", Map.of("graph", what), List.of(g.type()), k.error(), m.error(), null, false);
        if (k.error() != null && m.error() != null) {
            bothRefused++;
        } else if (isKnown(call)) {
            known++;
        } else if (k.error() != null) {
            mxOnly.add(what + ": Kiln refused: " + k.error());
        } else if (m.error() != null) {
            kilnOnly.add(what + ": MXNet refused: " + firstLine(m.error()));
        } else {
            bothRan++;
            gradients++;
            compareValues(call, what + ": output ", m.outputs(), k.outputs(), 1e-3);
            compareValues(call, what + ": gradient of ", m.grads(), k.grads(), 1e-3);
            compareValues(call, what + ": auxiliary state ", m.aux(), k.aux(), 1e-3);
        }
    }

    /** Random head gradients in [-1, 1] (quarters). */
    private FuzzGraphs.Arr head(long[] shape, DType type) {
        double[] h = new double[(int) FuzzGen.size(shape)];
        for (int j = 0; j < h.length; j++) {
            h[j] = (r.nextInt(9) - 4) / 4.0;
        }
        return new FuzzGraphs.Arr(shape, type, h);
    }

    /** Every name of {@code kiln} in {@code mx} must hold the same values to {@code tol} (relative and absolute). */
    private void compareValues(Call call, String prefix, Map<String, double[]> mx, Map<String, double[]> kiln, double tol) {
        for (Map.Entry<String, double[]> e : kiln.entrySet()) {
            double[] x = mx.get(e.getKey()), y = e.getValue();
            if (x == null || y == null) {
                continue;
            }
            if (x.length != y.length) {
                mismatch(call, prefix + e.getKey() + " has " + x.length + " values in MXNet, " + y.length + " in Kiln");
                continue;
            }
            // elementwise to tol, plus 1e-5 of the array's largest magnitude: a sum with cancellation
            // (a normalization's backward of large head gradients) loses absolute, not relative, digits
            double scale = 0;
            for (double v : x) {
                scale = Double.isFinite(v) ? Math.max(scale, Math.abs(v)) : scale;
            }
            for (int j = 0; j < x.length; j++) {
                if (Double.compare(x[j], y[j]) != 0 && !(Math.abs(x[j] - y[j]) <= tol + tol * Math.abs(x[j]) + 1e-5 * scale)) {
                    mismatch(call, prefix + e.getKey() + "[" + j + "] is " + x[j] + " in MXNet, " + y[j] + " in Kiln (largest "
                            + scale + ")");
                    break;
                }
            }
        }
    }

    /**
     * Binds the symbol JSON MXNet wrote ({@code MXSymbolSaveToJSON} of the graph it loaded from
     * Kiln's) in Kiln and compares every output, gradient and auxiliary state with Kiln's run of its
     * own symbol, exactly. Null when they agree.
     */
    private static String reloaded(FuzzGraphs.Graph g, String json, Map<String, GradReq> reqs, FuzzGraphs.Run own) {
        FuzzGraphs.Run again;
        try {
            again = FuzzGraphs.run(new FuzzGraphs.Graph(Symbol.fromJson(json), g.description(), g.inputs(), g.heads(), g.reqs(),
                    g.passes(), g.type()), Context.cpu(), reqs);
        } catch (KilnException | IllegalArgumentException e) {
            return "refused: " + e.getMessage();
        }
        if (again.error() != null) {
            return "refused: " + again.error();
        }
        List<Map<String, double[]>> a = List.of(own.outputs(), own.grads(), own.aux()), b = List.of(again.outputs(), again.grads(),
                again.aux());
        for (int i = 0; i < 3; i++) {
            if (!a.get(i).keySet().equals(b.get(i).keySet())) {
                return "names " + b.get(i).keySet() + " instead of " + a.get(i).keySet();
            }
            for (Map.Entry<String, double[]> e : a.get(i).entrySet()) {
                if (!Arrays.equals(e.getValue(), b.get(i).get(e.getKey()))) {
                    return e.getKey() + " differs";
                }
            }
        }
        return null;
    }

    /**
     * The graph in MXNet's legacy executor (from the symbol JSON Kiln writes), as {@link FuzzGraphs#run} in Kiln's;
     * {@code json[0]} receives the symbol JSON MXNet writes back for the graph it loaded.
     */
    private static FuzzGraphs.Run mxRun(FuzzGraphs.Graph gr, Map<String, GradReq> given, String[] json) {
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.mxnet.engine.Symbol sym = MxOracle.symbol(m, gr.symbol().toJson());
            json[0] = sym.toJsonString();
            List<String> aux = Arrays.asList(sym.getAuxNames());
            Map<String, ai.djl.ndarray.NDArray> args = new LinkedHashMap<>(), grads = new LinkedHashMap<>(), auxs = new LinkedHashMap<>();
            gr.inputs().forEach((name, a) -> {
                ai.djl.ndarray.NDArray arr = mxArray(m, a.values(), a.shape(), a.type());
                if (aux.contains(name)) {
                    auxs.put(name, arr);
                } else {
                    args.put(name, arr);
                    if (given.getOrDefault(name, GradReq.WRITE) != GradReq.NULL) {
                        grads.put(name, mxArray(m, new double[a.values().length], a.shape(), a.type()));
                    }
                }
            });
            Map<String, Integer> reqs = new LinkedHashMap<>();
            given.forEach((name, req) -> reqs.put(name, req.code()));
            List<ai.djl.ndarray.NDArray> hs = new ArrayList<>();
            for (FuzzGraphs.Arr h : gr.heads()) {
                hs.add(mxArray(m, h.values(), h.shape(), h.type()));
            }
            try (MxOracle.Executor ex = new MxOracle.Executor(m, sym, args, grads, auxs, reqs)) {
                Map<String, double[]> outs = new LinkedHashMap<>();
                for (int pass = 0; pass < gr.passes(); pass++) {
                    ex.forward(true);
                    for (int j = 0; j < ex.outputs().size(); j++) {
                        outs.put("out" + j, ex.outputs().get(j).toType(DataType.FLOAT64, false).toDoubleArray());
                    }
                    ex.backward(hs);
                }
                ex.forward(false);  // as FuzzGraphs.run: inference after training
                for (int j = 0; j < ex.outputs().size(); j++) {
                    outs.put("inference out" + j, ex.outputs().get(j).toType(DataType.FLOAT64, false).toDoubleArray());
                }
                Map<String, double[]> g = new LinkedHashMap<>(), x = new LinkedHashMap<>();
                grads.forEach((name, arr) -> g.put(name, arr.toType(DataType.FLOAT64, false).toDoubleArray()));
                auxs.forEach((name, arr) -> x.put(name, arr.toType(DataType.FLOAT64, false).toDoubleArray()));
                return new FuzzGraphs.Run(outs, g, x, null);
            }
        } catch (RuntimeException e) {
            return FuzzGraphs.Run.refused(String.valueOf(e.getMessage()));
        }
    }

    private static ai.djl.ndarray.NDArray mxArray(MxNDManager m, double[] v, long[] shape, DType t) {
        if (t == DType.FLOAT64) {
            return m.create(v, new ai.djl.ndarray.types.Shape(shape));  // exactly (through float32 would round)
        }
        float[] f = new float[v.length];
        for (int j = 0; j < v.length; j++) {
            f[j] = (float) v[j];
        }
        ai.djl.ndarray.NDArray a = MxOracle.create(m, f, shape);
        return t == DType.FLOAT32 ? a : a.toType(djl(t), false);
    }

    private void mismatch(Call call, String detail) {
        if (isKnown(new Call(call.op, call.attrs, call.types, null, null, detail, false, call.nonFinite))) {
            known++;
        } else {
            mismatches.add(detail);
        }
    }


    /**
     * Runs the fuzzer and prints everything it found: {@code seed perOp [op,op,...]}, or
     * {@code seed count graphs} for {@code count} random graphs; a last {@code dims=N} draws input
     * dimensions up to N (default 5).
     */
    public static void main(String[] args) {
        if (!MxOracle.available()) {
            System.out.println("UNAVAILABLE MXNet cannot load");
            System.exit(3);
        }
        while (args.length > 0 && args[args.length - 1].matches("(dims|specials)=\\d+")) {
            String[] kv = args[args.length - 1].split("=");
            if (kv[0].equals("dims")) {
                dimMax = Integer.parseInt(kv[1]);
            } else {
                specialOdds = Integer.parseInt(kv[1]);
            }
            args = Arrays.copyOf(args, args.length - 1);
        }
        long seed = args.length > 0 ? Long.parseLong(args[0]) : 1;
        int per = args.length > 1 ? Integer.parseInt(args[1]) : 8;
        boolean graphs = args.length > 2 && args[2].equals("graphs");
        Set<String> only = args.length > 2 && !graphs ? new HashSet<>(Arrays.asList(args[2].split(","))) : null;
        Report rep = graphs ? runGraphs(seed, per) : run(seed, per, only);
        for (String s : rep.mismatches()) {
            System.out.println("MISMATCH " + s);
        }
        for (String s : rep.kilnOnly()) {
            System.out.println("KILN-ONLY " + s);
        }
        for (String s : rep.mxOnly()) {
            System.out.println("MX-ONLY " + s);
        }
        rep.perOp().forEach((op, c) -> System.out.println("OP " + op + " both=" + c[0] + " refused=" + c[1] + " mxOnly=" + c[2]
                + " kilnOnly=" + c[3]));
        System.out.println(rep.summary());
    }
}
