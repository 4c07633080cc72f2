package dev.kiln.examples;

import dev.kiln.engine.Engine;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The main job through Module.fit: the MLP on real MNIST reaches >= 97.5% test accuracy within 10 epochs (here 6). */
@ExtendWith(NoLeaks.class)
class MnistFitTest {
    @TempDir
    Path tmp;

    @Test
    void moduleFitReaches975PercentOnMnist() throws Exception {
        Path dir = Path.of("data/mnist");
        assertTrue(Files.exists(dir.resolve("train-images-idx3-ubyte.gz")), "MNIST ships in data/mnist");
        MnistFit.Result r = MnistFit.fit(dir, 6, 128, 0.1, 0.9, 42, true, tmp, tmp.resolve("mnist").toString());
        System.out.printf("MNIST Module.fit: train acc %.4f, validation acc %.4f, %.0f samples/s (%d threads)%n", r.trainAccuracy(),
                r.validationAccuracy(), r.samplesPerSecond(), Engine.numThreads());
        assertTrue(r.validationAccuracy() >= 0.975, "validation accuracy " + r.validationAccuracy());
        assertTrue(Files.size(tmp.resolve("mnist-train.csv")) > 0, "training log CSV");
        assertTrue(Files.size(tmp.resolve("mnist-train.png")) > 0, "training curves PNG");
        assertTrue(Files.exists(tmp.resolve("mnist-0006.params")) && Files.exists(tmp.resolve("mnist-0006.states")), "checkpoints");
    }
}
