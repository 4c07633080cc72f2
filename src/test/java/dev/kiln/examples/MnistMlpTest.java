package dev.kiln.examples;

import dev.kiln.engine.Engine;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The main job: the MLP 784-512-512-10 trained with the Executor API on real MNIST reaches >= 97%. */
@ExtendWith(NoLeaks.class)
class MnistMlpTest {
    @Test
    void mlpReaches97PercentOnMnist() throws Exception {
        Path dir = Path.of("data/mnist");
        assertTrue(Files.exists(dir.resolve("train-images-idx3-ubyte.gz")), "MNIST ships in data/mnist");
        int before = Engine.numThreads();
        Engine.setNumThreads(1);
        try {
            MnistMlp.Result r = MnistMlp.train(dir, 2, 128, 0.1, 0.9, 42, false);
            System.out.printf("MNIST MLP: train loss %s, train acc %s, test acc %.4f, %d samples/s (1 thread, incl. data copies and updates)%n",
                    r.trainLoss(), r.trainAccuracy(), r.testAccuracy(), r.samplesPerSecond());
            assertTrue(r.trainLoss().get(1) < r.trainLoss().get(0), "loss decreases");
            assertTrue(r.testAccuracy() >= 0.97, "test accuracy " + r.testAccuracy());
        } finally {
            Engine.setNumThreads(before);
        }
    }
}
