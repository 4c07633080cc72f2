package dev.kiln.ops.pool;

import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.io.DataInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.GZIPInputStream;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * _contrib_BilinearResize2D and _contrib_AdaptiveAvgPooling2D on real CIFAR-10 test images
 * (../shared/data/cifar10-jpeg, see its README): against the Java references of their tests, against
 * Kiln's Pooling where adaptive pooling is plain average pooling, and against MXNet 1.9.1.
 */
@ExtendWith(NoLeaks.class)
class ImagePoolCifarTest {
    static final Path CIFAR = Path.of("..", "shared", "data", "cifar10-jpeg", "test_batch.bin.gz");
    static final int IMAGES = 16;

    /** The first n test images as [n, 3, 32, 32], pixels / 255. */
    static double[] load(int n) throws IOException {
        double[] x = new double[n * 3 * 32 * 32];
        try (DataInputStream in = new DataInputStream(new GZIPInputStream(Files.newInputStream(CIFAR)))) {
            byte[] rec = new byte[3073];
            for (int i = 0; i < n; i++) {
                in.readFully(rec);
                for (int j = 0; j < 3072; j++) {
                    x[i * 3072 + j] = (rec[1 + j] & 0xff) / 255.0;
                }
            }
        }
        return x;
    }

    @Test
    void resizeAndAdaptivePoolingOnCifarImages() throws IOException {
        Assumptions.assumeTrue(Files.isRegularFile(CIFAR), "CIFAR-10 data not found at " + CIFAR.toAbsolutePath()
                + " (the shared data folder is missing)");
        long[] xs = s(IMAGES, 3, 32, 32);
        double[] x = load(IMAGES);
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        assertEquals(true, mean / x.length > 0.2 && mean / x.length < 0.8, "not image data: mean " + mean / x.length);
        Map<String, long[]> sh = shapes("data", xs);
        Map<String, double[]> vals = Map.of("data", x);
        int planes = IMAGES * 3;
        for (DType t : ImageTesting.BOTH) {
            Symbol up = ImageTesting.op(BilinearResize2DTest.OP, a("height", "64", "width", "64"), "data");
            ImageTesting.assertClose(BilinearResize2DTest.ref(x, planes, 32, 32, 64, 64, true), ImageTesting.forward(up, sh, vals, t),
                    t, "CIFAR 32x32 -> 64x64");
            Symbol down = ImageTesting.op(BilinearResize2DTest.OP, a("height", "20", "width", "24", "align_corners", "False"), "data");
            ImageTesting.assertClose(BilinearResize2DTest.ref(x, planes, 32, 32, 20, 24, false),
                    ImageTesting.forward(down, sh, vals, t), t, "CIFAR 32x32 -> 20x24");
            Symbol ada = ImageTesting.op(AdaptiveAvgPooling2DTest.OP, a("output_size", "(5, 7)"), "data");
            ImageTesting.assertClose(AdaptiveAvgPooling2DTest.ref(x, planes, 32, 32, 5, 7), ImageTesting.forward(ada, sh, vals, t), t,
                    "CIFAR adaptive (5, 7)");
        }
        // 32 -> 8 windows are 4 x 4 tiles: the same as average Pooling with kernel 4, stride 4
        try (NDScope scope = NDScope.open()) {
            NDArray d = NDArray.create(x, xs);
            double[] ada = NDArray.invoke(AdaptiveAvgPooling2DTest.OP, a("output_size", "8"), d).get(0).toDoubleArray();
            double[] pool = NDArray.invoke("Pooling", a("pool_type", "avg", "kernel", "(4, 4)", "stride", "(4, 4)"), d).get(0)
                    .toDoubleArray();
            ImageTesting.assertClose(pool, ada, DType.FLOAT64, "adaptive 8x8 vs 4x4 average pooling");
        }
        // and the real MXNet on the same images
        double[][] in = {x};
        ImageTesting.oracle(BilinearResize2DTest.OP, a("height", "45", "width", "27", "align_corners", "False"), in, xs);
        ImageTesting.oracle(BilinearResize2DTest.OP, a("mode", "odd_scale", "scale_height", "1.5", "scale_width", "0.5"), in, xs);
        ImageTesting.oracle(AdaptiveAvgPooling2DTest.OP, a("output_size", "(7, 3)"), in, xs);
    }
}
