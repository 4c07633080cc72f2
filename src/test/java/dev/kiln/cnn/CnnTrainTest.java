package dev.kiln.cnn;

import dev.kiln.examples.CnnNets;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.Cifar10;
import dev.kiln.io.MNISTIter;
import dev.kiln.io.NDArrayIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Convolutional networks trained from scratch with {@code Module.fit} on real data: LeNet on
 * MNIST, and a CIFAR ResNet with BatchNorm on the CIFAR-10 subset (a short run by default; the
 * full ResNet-20 run is in the {@code slow} profile).
 */
@ExtendWith(NoLeaks.class)
class CnnTrainTest {
    static double fitMnistLenet(int epochs) throws Exception {
        Path dir = Path.of("data/mnist");
        Initializer.seed(7);
        try (MNISTIter train = MNISTIter.builder().setImage(dir.resolve("train-images-idx3-ubyte.gz"))
                .setLabel(dir.resolve("train-labels-idx1-ubyte.gz")).setBatchSize(128).optShuffle(true).optSeed(7).build();
             MNISTIter test = MNISTIter.builder().setImage(dir.resolve("t10k-images-idx3-ubyte.gz"))
                     .setLabel(dir.resolve("t10k-labels-idx1-ubyte.gz")).setBatchSize(100).optShuffle(false).build();
             Module mod = new Module(CnnNets.lenet())) {
            mod.fit(train, new BaseModule.FitArgs().evalData(test).numEpoch(epochs).initializer(new Xavier())
                    .optimizerParams(Map.of("learning_rate", 0.05, "momentum", 0.9, "wd", 1e-4)));
            double acc = mod.score(test, "acc").get(0).getValue();
            System.out.printf("LeNet on MNIST after %d epochs: test accuracy %.4f%n", epochs, acc);
            return acc;
        }
    }

    @Test
    void lenetLearnsMnist() throws Exception {
        double acc = fitMnistLenet(1);
        assertTrue(acc >= 0.97, "LeNet test accuracy after one epoch " + acc);
    }

    @Test
    @Tag("slow")
    void lenetReaches99PercentOnMnist() throws Exception {
        double acc = fitMnistLenet(6);
        assertTrue(acc >= 0.99, "LeNet test accuracy " + acc);
    }

    static double fitCifar(int blocksPerStage, int trainImages, int testImages, int epochs, double lr, long[] decaySteps)
            throws Exception {
        Path dir = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "cifar10-jpeg");
        assumeTrue(Files.exists(dir.resolve("data_batch_1.bin.gz")), "CIFAR-10 subset not available: " + dir);
        Cifar10.Data train = Cifar10.load(dir.resolve("data_batch_1.bin.gz"), trainImages);
        Cifar10.Data test = Cifar10.load(dir.resolve("test_batch.bin.gz"), testImages);
        double[] stats = train.standardize();
        test.normalize(stats);
        Initializer.seed(11);
        try (NDArrayIter trainIt = NDArrayIter.builder().setData(train.images(), train.count(), 3, 32, 32).optLabel(train.labels())
                .setBatchSize(64).optShuffle(true).optSeed(11).optLastBatchHandle("discard").build();
             NDArrayIter testIt = NDArrayIter.builder().setData(test.images(), test.count(), 3, 32, 32).optLabel(test.labels())
                     .setBatchSize(100).build();
             Module mod = new Module(CnnNets.cifarResNet(blocksPerStage))) {
            Map<String, Object> opt = new java.util.HashMap<>(Map.of("learning_rate", lr, "momentum", 0.9, "wd", 1e-4));
            if (decaySteps != null) {
                // step decay (x0.1) at the given update counts, the usual CIFAR ResNet schedule
                opt.put("lr_scheduler", new dev.kiln.optimizer.lr.MultiFactorScheduler(decaySteps, 0.1));
            }
            mod.fit(trainIt, new BaseModule.FitArgs().evalData(testIt).numEpoch(epochs).initializer(new Xavier("gaussian", "in", 2))
                    .optimizerParams(opt));
            double acc = mod.score(testIt, "acc").get(0).getValue();
            System.out.printf("CIFAR ResNet-%d, %d training images, %d epochs: test accuracy %.4f on %d images%n",
                    6 * blocksPerStage + 2, train.count(), epochs, acc, test.count());
            return acc;
        }
    }

    /** Short run: a ResNet-8 on 2,000 images for 2 epochs must learn (chance is 10%). */
    @Test
    void cifarResNetLearns() throws Exception {
        double acc = fitCifar(1, 2000, 2000, 2, 0.05, null);
        assertTrue(acc >= 0.25, "CIFAR test accuracy " + acc);
    }

    /**
     * Full run (slow profile, about 10 minutes on 2 cores): ResNet-20 on the 10,000-image subset,
     * 12 epochs with the learning rate divided by 10 after epochs 8 and 11 (156 updates per
     * epoch), reaches 60% on the whole 10,000-image test set.
     */
    @Test
    @Tag("slow")
    void cifarResNet20Reaches60Percent() throws Exception {
        double acc = fitCifar(3, 10000, 10000, 12, 0.05, new long[] {8 * 156, 11 * 156});
        assertTrue(acc >= 0.60, "CIFAR ResNet-20 test accuracy " + acc);
    }
}
