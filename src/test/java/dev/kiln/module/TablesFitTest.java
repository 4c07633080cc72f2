package dev.kiln.module;

import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.CSVIter;
import dev.kiln.io.Csv;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The sklearn tables of {@code ../shared/data/sklearn/csviter} through {@code CSVIter} and
 * {@code Module.fit}: iris and wine classifiers, a diabetes regression. The tables are split
 * 80/20 with a fixed shuffle and standardised with the training split's mean and deviation
 * (written back as CSV files, as one would prepare data for MXNet's CSVIter).
 */
@ExtendWith(NoLeaks.class)
class TablesFitTest {
    @TempDir
    Path tmp;

    static Path dir() {
        Path d = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "sklearn", "csviter");
        assumeTrue(Files.isDirectory(d), "shared data not available: " + d);
        return d;
    }

    /** Paths of the train/validation data and label CSVs. */
    record Split(Path trainX, Path trainY, Path valX, Path valY, int features, int trainRows, int valRows, double[] valLabels,
            double trainLabelMean, double trainLabelSd) {}

    Split split(String table, boolean standardizeLabel) throws IOException {
        return split(table, standardizeLabel, 4);
    }

    /** Fold {@code fold} of 5 (after a fixed shuffle) is the validation split. */
    Split split(String table, boolean standardizeLabel, int fold) throws IOException {
        Csv.Table x = Csv.read(dir().resolve(table + ".data.csv"));
        Csv.Table y = Csv.read(dir().resolve(table + ".label.csv"));
        int n = x.rows();
        int f = x.cols();
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Random r = new Random(1234);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        // rotate the shuffled order so that fold `fold` comes last and becomes the validation rows
        int v0 = n * fold / 5;
        int v1 = n * (fold + 1) / 5;
        int[] rotated = new int[n];
        int w = 0;
        for (int i = 0; i < n; i++) {
            if (i < v0 || i >= v1) {
                rotated[w++] = order[i];
            }
        }
        for (int i = v0; i < v1; i++) {
            rotated[w++] = order[i];
        }
        order = rotated;
        int nTrain = n - (v1 - v0);
        double[] mean = new double[f];
        double[] sd = new double[f];
        for (int k = 0; k < nTrain; k++) {
            for (int c = 0; c < f; c++) {
                mean[c] += x.get(order[k], c) / nTrain;
            }
        }
        for (int k = 0; k < nTrain; k++) {
            for (int c = 0; c < f; c++) {
                double d = x.get(order[k], c) - mean[c];
                sd[c] += d * d / nTrain;
            }
        }
        double ym = 0;
        for (int k = 0; k < nTrain; k++) {
            ym += y.get(order[k], 0) / nTrain;
        }
        double ysd = 0;
        for (int k = 0; k < nTrain; k++) {
            ysd += Math.pow(y.get(order[k], 0) - ym, 2) / nTrain;
        }
        ysd = Math.sqrt(ysd);
        StringBuilder tx = new StringBuilder();
        StringBuilder ty = new StringBuilder();
        StringBuilder vx = new StringBuilder();
        StringBuilder vy = new StringBuilder();
        double[] valLabels = new double[n - nTrain];
        for (int k = 0; k < n; k++) {
            StringBuilder bx = k < nTrain ? tx : vx;
            StringBuilder by = k < nTrain ? ty : vy;
            for (int c = 0; c < f; c++) {
                bx.append(c > 0 ? "," : "").append((x.get(order[k], c) - mean[c]) / Math.sqrt(sd[c] + 1e-12));
            }
            bx.append('\n');
            double label = y.get(order[k], 0);
            by.append(standardizeLabel ? (label - ym) / ysd : label).append('\n');
            if (k >= nTrain) {
                valLabels[k - nTrain] = label;
            }
        }
        String tag = table + "-" + fold;
        Split s = new Split(tmp.resolve(tag + "-train.x.csv"), tmp.resolve(tag + "-train.y.csv"), tmp.resolve(tag + "-val.x.csv"),
                tmp.resolve(tag + "-val.y.csv"), f, nTrain, n - nTrain, valLabels, ym, ysd);
        Files.writeString(s.trainX, tx);
        Files.writeString(s.trainY, ty);
        Files.writeString(s.valX, vx);
        Files.writeString(s.valY, vy);
        return s;
    }

    static CSVIter iter(Path x, Path y, int features, int batch, boolean roundBatch) throws IOException {
        return iter(x, y, features, batch, roundBatch, "softmax_label");
    }

    static CSVIter iter(Path x, Path y, int features, int batch, boolean roundBatch, String labelName) throws IOException {
        return CSVIter.builder().setDataCsv(x).setDataShape(features).optLabelCsv(y).setBatchSize(batch).optRoundBatch(roundBatch)
                .optLabelName(labelName).build();
    }

    static Symbol mlp(int hidden, int classes) {
        Symbol h = Symbol.activation("relu1", Symbol.fullyConnected("fc1", Symbol.variable("data"), hidden), "relu");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc2", h, classes));
    }

    /** Mean validation accuracy over a 5-fold cross-validation (each fold trained from scratch). */
    private double classify(String table, int classes) throws IOException {
        double sum = 0;
        for (int fold = 0; fold < 5; fold++) {
            Split s = split(table, false, fold);
            Initializer.seed(3 + fold);
            try (CSVIter train = iter(s.trainX, s.trainY, s.features, 16, true); CSVIter val = iter(s.valX, s.valY, s.features, 1, false);
                 Module mod = new Module(mlp(32, classes))) {
                mod.fit(train, new BaseModule.FitArgs().numEpoch(30).initializer(new Xavier())
                        .optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9, "wd", 1e-4)));
                double acc = mod.score(val, "acc").get(0).getValue();
                System.out.printf("%s fold %d: validation accuracy %.4f on %d held-out rows%n", table, fold, acc, s.valRows);
                sum += acc;
            }
        }
        System.out.printf("%s: 5-fold cross-validation accuracy %.4f%n", table, sum / 5);
        return sum / 5;
    }

    @Test
    void irisClassifier() throws IOException {
        double acc = classify("iris", 3);
        assertTrue(acc >= 0.93, "iris 5-fold validation accuracy " + acc);
    }

    @Test
    void wineClassifier() throws IOException {
        double acc = classify("wine", 3);
        assertTrue(acc >= 0.93, "wine 5-fold validation accuracy " + acc);
    }

    /** Diabetes progression with LinearRegressionOutput: RMSE below the constant-mean predictor's. */
    @Test
    void diabetesRegression() throws IOException {
        Split s = split("diabetes", true);
        Symbol net = Symbol.linearRegressionOutput("lro", Symbol.fullyConnected("fc", Symbol.variable("data"), 1));
        Initializer.seed(5);
        try (CSVIter train = iter(s.trainX, s.trainY, s.features, 16, true, "lro_label");
             CSVIter val = iter(s.valX, s.valY, s.features, 1, false, "lro_label");
             Module mod = Module.builder(net).labelNames("lro_label").build()) {
            mod.fit(train, new BaseModule.FitArgs().evalData(val).evalMetric("rmse").numEpoch(60).initializer(new Xavier())
                    .optimizerParams(Map.of("learning_rate", 0.05, "momentum", 0.9)));
            List<NDArray> pred = mod.predict(val);
            float[] p = pred.get(0).toFloatArray();
            pred.forEach(NDArray::close);
            // undo the label standardisation with the training split's statistics
            double ym = s.trainLabelMean;
            double ysd = s.trainLabelSd;
            double se = 0;
            double seMean = 0;
            for (int i = 0; i < s.valRows; i++) {
                double yhat = p[i] * ysd + ym;
                se += Math.pow(yhat - s.valLabels[i], 2);
                seMean += Math.pow(ym - s.valLabels[i], 2);
            }
            double rmse = Math.sqrt(se / s.valRows);
            double rmseMean = Math.sqrt(seMean / s.valRows);
            System.out.printf("diabetes: validation RMSE %.2f vs constant-mean predictor %.2f%n", rmse, rmseMean);
            assertTrue(rmse < rmseMean * 0.9, "RMSE " + rmse + " vs mean predictor " + rmseMean);
        }
    }
}
