package dev.kiln.callback;

import dev.kiln.internal.AtomicFiles;
import dev.kiln.metric.EvalMetric;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * Records training curves to a CSV file and renders them to a PNG chart (no MXNet counterpart).
 *
 * <p>Three ways in, usable together:
 * <ul>
 *   <li>as a <b>batch-end callback</b> ({@link #invoke}): counts batches and samples, and after every
 *       {@code frequent} batches of an epoch (when {@code (nbatch + 1) % frequent == 0}) records the
 *       metric's <em>local</em> values as {@code batch} rows, then calls {@code resetLocal()} only if
 *       {@code autoReset} was set. It also remembers the metric's global values, so the epoch's
 *       {@code train} values (what fit logs as {@code Epoch[e] Train-...}) are recorded automatically
 *       when the next epoch starts, when a score-end call for the epoch arrives, or at {@link #close()};</li>
 *   <li>as a <b>score-end callback</b> ({@link #scoreEndCallback()}): records the evaluation
 *       metric's local values (what {@code score} returns) as {@code validation} rows for the epoch;</li>
 *   <li>through {@link #epochEnd(int, List, List)}, which a training loop calls with the epoch's train
 *       and validation values; explicit train values supersede the automatic ones.</li>
 * </ul>
 * Do not also register the log as an eval-batch-end callback: evaluation batches would count as
 * training batches. When a {@link Speedometer} with auto reset fires on the same batch, put the
 * log first in the callback list, or it sees the freshly reset metric.
 *
 * <p><b>CSV</b> ({@value #CSV_HEADER}): one row per (record, metric name); {@code phase} is
 * {@code batch}, {@code train} or {@code validation}; {@code epoch} is 0-based as in MXNet's log
 * lines; {@code batch} is the 0-based batch index (empty for epoch rows); {@code samples} is the
 * number of training samples seen since the log was created ({@code batchSize} per batch, padding
 * included); {@code elapsed_s} is seconds since creation; {@code value} is Java's shortest repr, or
 * {@code nan}/{@code inf}/{@code -inf}. Each row is written with one {@code write} as soon as it is
 * recorded, and the file is forced to disk at every epoch-level record, so a crash loses no earlier
 * row. Recording the same (phase, epoch, metric) again with the same value is a no-op; with another
 * value a new row is appended and the later one wins; {@link #close()} then rewrites the file
 * atomically without the superseded rows.
 *
 * <p><b>PNG</b> (optional): one XChart chart per metric name, laid out in a grid of up to two
 * columns ({@code optChartSize} pixels each); the x axis is in epochs: batch rows are points at {@code epoch + (nbatch + 1) / batches
 * in the epoch}, train and validation values are lines through {@code epoch + 1}. Rendered after
 * every epoch-level record and at close, drawn with {@link BitmapEncoder}, encoded in memory and written
 * atomically ({@link AtomicFiles}), so readers never see a half-written image. Loading this class
 * sets {@code java.awt.headless=true} unless the property is already set.
 *
 * <p>Thread-safety: all methods are synchronized. Ownership: the log owns an open file channel;
 * {@link #close()} releases it (idempotent). It never keeps the metrics it is given.
 */
public final class TrainingLog implements BatchEndCallback, Closeable {
    static {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    private static final Logger LOG = LoggerFactory.getLogger(TrainingLog.class);

    /** The CSV header line. */
    public static final String CSV_HEADER = "phase,epoch,batch,samples,elapsed_s,metric,value";
    /** Phase of per-batch rows. */
    public static final String BATCH = "batch";
    /** Phase of epoch-level training rows. */
    public static final String TRAIN = "train";
    /** Phase of epoch-level validation rows. */
    public static final String VALIDATION = "validation";

    /** One CSV row; the value of an epoch-level row may be superseded. */
    private static final class Row {
        final String phase;
        final int epoch;
        final int batch;
        final long samples;
        final double elapsed;
        final String metric;
        final double value;
        boolean superseded;

        Row(String phase, int epoch, int batch, long samples, double elapsed, String metric, double value) {
            this.phase = phase;
            this.epoch = epoch;
            this.batch = batch;
            this.samples = samples;
            this.elapsed = elapsed;
            this.metric = metric;
            this.value = value;
        }

        String csv() {
            return phase + ',' + epoch + ',' + (batch < 0 ? "" : Integer.toString(batch)) + ',' + samples + ','
                    + Fmt.f(elapsed, 3) + ',' + quote(metric) + ',' + repr(value) + '\n';
        }
    }

    private final Path csvFile;
    private final Path chartFile;
    private final int batchSize;
    private final int frequent;
    private final boolean autoReset;
    private final int chartWidth;
    private final int chartHeight;
    private final LongSupplier nanoTime;
    private final long start;

    private FileChannel csv;
    private boolean closed;

    private final List<Row> rows = new ArrayList<>();
    /** (phase, epoch, metric) to the current row of an epoch-level value. */
    private final Map<String, Row> epochRows = new HashMap<>();
    private final Set<String> metricNames = new LinkedHashSet<>();
    private final Map<Integer, Integer> batchesPerEpoch = new HashMap<>();
    private final Set<Integer> trainCommitted = new HashSet<>();
    private boolean anySuperseded;
    private boolean chartDirty;

    private long samples;
    private int curEpoch = -1;
    private List<Map.Entry<String, Double>> lastGlobal;
    private int lastGlobalEpoch = -1;

    /**
     * A log recording every {@code frequent} batches, without auto reset.
     *
     * @param csvFile the CSV file (created or truncated; its folder is created if missing)
     * @param chartFile the PNG file, or null for no chart
     * @param batchSize samples per batch, {@code >= 1}
     * @param frequent record every this many batches, {@code >= 1}
     * @throws IOException if the CSV file cannot be created
     */
    public TrainingLog(Path csvFile, Path chartFile, int batchSize, int frequent) throws IOException {
        this(builder().setCsvFile(csvFile).optChartFile(chartFile).setBatchSize(batchSize).optFrequent(frequent));
    }

    private TrainingLog(Builder b) throws IOException {
        if (b.csvFile == null) {
            throw new IllegalArgumentException("TrainingLog: setCsvFile is required");
        }
        if (b.batchSize < 1) {
            throw new IllegalArgumentException("TrainingLog: batchSize must be >= 1 (setBatchSize), got " + b.batchSize);
        }
        if (b.frequent < 1) {
            throw new IllegalArgumentException("TrainingLog: frequent must be >= 1, got " + b.frequent);
        }
        if (b.chartWidth < 100 || b.chartHeight < 100) {
            throw new IllegalArgumentException("TrainingLog: chart size must be at least 100x100, got " + b.chartWidth + "x"
                    + b.chartHeight);
        }
        this.csvFile = b.csvFile.toAbsolutePath();
        this.chartFile = b.chartFile == null ? null : b.chartFile.toAbsolutePath();
        if (this.csvFile.equals(this.chartFile)) {
            throw new IllegalArgumentException("TrainingLog: CSV and chart file are the same: " + this.csvFile);
        }
        this.batchSize = b.batchSize;
        this.frequent = b.frequent;
        this.autoReset = b.autoReset;
        this.chartWidth = b.chartWidth;
        this.chartHeight = b.chartHeight;
        this.nanoTime = b.nanoTime;
        Files.createDirectories(this.csvFile.getParent());
        if (this.chartFile != null) {
            Files.createDirectories(this.chartFile.getParent());
        }
        this.csv = FileChannel.open(this.csvFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
        try {
            writeFully(CSV_HEADER + "\n");
            csv.force(false);
        } catch (IOException | RuntimeException e) {
            csv.close();
            throw e;
        }
        this.start = nanoTime.getAsLong();
    }

    /** @return a builder (required: {@code setCsvFile}, {@code setBatchSize}) */
    public static Builder builder() {
        return new Builder();
    }

    /** @return the CSV file (absolute) */
    public Path csvFile() {
        return csvFile;
    }

    /** @return the PNG file (absolute), or null when no chart is drawn */
    public Path chartFile() {
        return chartFile;
    }

    // =========================================================================================
    // Recording
    // =========================================================================================

    /**
     * Batch-end callback: counts the batch, remembers the global metric values and, every
     * {@code frequent} batches, records the local values (then resets them if configured).
     *
     * @param param the batch
     * @throws IllegalStateException if the log is closed
     * @throws UncheckedIOException if the CSV cannot be written
     */
    @Override
    public synchronized void invoke(BatchEndParam param) {
        ensureOpen();
        int epoch = param.epoch();
        if (epoch != curEpoch) {
            if (curEpoch >= 0) {
                commitAutoTrain(curEpoch);
                finishEpochLevel();
            }
            curEpoch = epoch;
        }
        samples += batchSize;
        batchesPerEpoch.merge(epoch, param.nbatch() + 1, Math::max);
        EvalMetric metric = param.evalMetric();
        if (metric == null) {
            return;
        }
        lastGlobal = List.copyOf(metric.getGlobalNameValue());
        lastGlobalEpoch = epoch;
        if ((param.nbatch() + 1) % frequent == 0) {
            double t = elapsed();
            for (Map.Entry<String, Double> nv : metric.getNameValue()) {
                append(new Row(BATCH, epoch, param.nbatch(), samples, t, nv.getKey(), nv.getValue()));
            }
            if (autoReset) {
                metric.resetLocal();
            }
        }
    }

    /**
     * A score-end (eval-end) callback recording the evaluation metric's local values as the
     * validation values of {@code param.epoch()}; it first records the epoch's train values from
     * the batches seen, then forces the CSV to disk and redraws the chart.
     *
     * @return the callback (bound to this log)
     */
    public BatchEndCallback scoreEndCallback() {
        return param -> {
            synchronized (TrainingLog.this) {
                ensureOpen();
                commitAutoTrain(param.epoch());
                if (param.evalMetric() != null) {
                    recordEpochValues(VALIDATION, param.epoch(), param.evalMetric().getNameValue());
                }
                finishEpochLevel();
            }
        };
    }

    /**
     * Records the epoch-level values of one epoch, forces the CSV to disk and redraws the chart.
     * A training loop calls it once per epoch, after validation.
     *
     * @param epoch the 0-based epoch
     * @param train the training values (fit's global {@code Train-} values); null or empty to keep
     *     the values recorded from the batches
     * @param validation the validation values, or null/empty when there was no validation
     * @throws IllegalStateException if the log is closed
     * @throws UncheckedIOException if a file cannot be written
     */
    public synchronized void epochEnd(int epoch, List<Map.Entry<String, Double>> train,
                                      List<Map.Entry<String, Double>> validation) {
        ensureOpen();
        if (epoch < 0) {
            throw new IllegalArgumentException("TrainingLog.epochEnd: epoch must be >= 0, got " + epoch);
        }
        if (train != null && !train.isEmpty()) {
            recordEpochValues(TRAIN, epoch, train);
            trainCommitted.add(epoch);
        } else {
            commitAutoTrain(epoch);
        }
        if (validation != null) {
            recordEpochValues(VALIDATION, epoch, validation);
        }
        finishEpochLevel();
    }

    /**
     * Draws the chart now (it is also drawn after every epoch-level record and at close).
     *
     * @throws IOException if the PNG cannot be written
     * @throws IllegalStateException if no chart file was configured
     */
    public synchronized void renderChart() throws IOException {
        if (chartFile == null) {
            throw new IllegalStateException("TrainingLog for " + csvFile + " has no chart file");
        }
        List<XYChart> charts = buildCharts();
        if (charts.isEmpty()) {
            return;
        }
        // a grid of up to two columns; BitmapEncoder.saveBitmap(list, rows, cols, ...) needs a full
        // grid, so the charts are drawn one by one onto a white canvas
        int cols = Math.min(2, charts.size());
        int rowsN = (charts.size() + cols - 1) / cols;
        BufferedImage canvas = new BufferedImage(cols * chartWidth, rowsN * chartHeight, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = canvas.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, canvas.getWidth(), canvas.getHeight());
            for (int i = 0; i < charts.size(); i++) {
                g.drawImage(BitmapEncoder.getBufferedImage(charts.get(i)), (i % cols) * chartWidth, (i / cols) * chartHeight, null);
            }
        } finally {
            g.dispose();
        }
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        if (!ImageIO.write(canvas, "png", png)) {
            throw new IOException("no PNG writer available for " + chartFile);
        }
        AtomicFiles.write(chartFile, png.toByteArray());
        chartDirty = false;
        LOG.debug("Drew {} training chart(s) to {}", charts.size(), chartFile);
    }

    /**
     * Records the last epoch's train values (if not recorded yet), forces and closes the CSV
     * (rewriting it atomically without superseded rows if there were any) and draws the chart.
     * Idempotent.
     *
     * @throws IOException if a file cannot be written; the channel is closed anyway
     */
    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try (FileChannel ch = csv) {
            if (curEpoch >= 0) {
                commitAutoTrain(curEpoch);
            }
            ch.force(false);
        } catch (UncheckedIOException e) {
            throw e.getCause();
        } finally {
            csv = null;
        }
        if (anySuperseded) {
            StringBuilder b = new StringBuilder(CSV_HEADER).append('\n');
            for (Row r : rows) {
                if (!r.superseded) {
                    b.append(r.csv());
                }
            }
            AtomicFiles.write(csvFile, b.toString().getBytes(StandardCharsets.UTF_8));
        }
        if (chartFile != null && (chartDirty || !rows.isEmpty())) {
            renderChart();
        }
    }

    // =========================================================================================
    // Internals
    // =========================================================================================

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("TrainingLog for " + csvFile + " is closed");
        }
    }

    private double elapsed() {
        return (nanoTime.getAsLong() - start) / 1e9;
    }

    /** Records the remembered global values as the epoch's train values, once, unless given explicitly. */
    private void commitAutoTrain(int epoch) {
        if (lastGlobal != null && lastGlobalEpoch == epoch && trainCommitted.add(epoch)) {
            recordEpochValues(TRAIN, epoch, lastGlobal);
        }
    }

    private void recordEpochValues(String phase, int epoch, List<Map.Entry<String, Double>> values) {
        double t = elapsed();
        for (Map.Entry<String, Double> nv : values) {
            String name = Objects.requireNonNull(nv.getKey(), "metric name");
            double v = Objects.requireNonNull(nv.getValue(), () -> "value of metric " + name);
            String key = phase + '\u0000' + epoch + '\u0000' + name;
            Row old = epochRows.get(key);
            if (old != null && Double.compare(old.value, v) == 0) {
                continue;
            }
            if (old != null) {
                old.superseded = true;
                anySuperseded = true;
            }
            Row r = new Row(phase, epoch, -1, samples, t, name, v);
            epochRows.put(key, r);
            append(r);
        }
    }

    private void append(Row r) {
        rows.add(r);
        metricNames.add(r.metric);
        if (!r.phase.equals(BATCH)) {
            chartDirty = true;
        }
        try {
            writeFully(r.csv());
        } catch (IOException e) {
            throw new UncheckedIOException("TrainingLog: writing " + csvFile + " failed: " + e.getMessage(), e);
        }
    }

    /** After epoch-level records: force the CSV to disk and redraw the chart if it changed. */
    private void finishEpochLevel() {
        try {
            csv.force(false);
            if (chartFile != null && chartDirty) {
                renderChart();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("TrainingLog: writing " + (chartFile != null ? chartFile : csvFile) + " failed: "
                    + e.getMessage(), e);
        }
    }

    private void writeFully(String text) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
        while (buf.hasRemaining()) {
            csv.write(buf);
        }
    }

    private List<XYChart> buildCharts() {
        List<XYChart> charts = new ArrayList<>();
        for (String name : metricNames) {
            List<double[]> batch = new ArrayList<>();
            List<double[]> train = new ArrayList<>();
            List<double[]> valid = new ArrayList<>();
            for (Row r : rows) {
                if (r.superseded || !r.metric.equals(name) || !Double.isFinite(r.value)) {
                    continue;
                }
                if (r.phase.equals(BATCH)) {
                    int n = batchesPerEpoch.getOrDefault(r.epoch, r.batch + 1);
                    batch.add(new double[] {r.epoch + (r.batch + 1) / (double) n, r.value});
                } else {
                    (r.phase.equals(TRAIN) ? train : valid).add(new double[] {r.epoch + 1, r.value});
                }
            }
            if (batch.isEmpty() && train.isEmpty() && valid.isEmpty()) {
                continue;
            }
            train.sort((a, b) -> Double.compare(a[0], b[0]));
            valid.sort((a, b) -> Double.compare(a[0], b[0]));
            XYChart chart = new XYChartBuilder().width(chartWidth).height(chartHeight).title(name).xAxisTitle("epoch")
                    .yAxisTitle(name).build();
            chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
            chart.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
            chart.getStyler().setChartBackgroundColor(Color.WHITE);
            chart.getStyler().setMarkerSize(6);
            if (!batch.isEmpty()) {
                XYSeries s = chart.addSeries("train (every " + frequent + " batches)", xs(batch), ys(batch));
                s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
                s.setMarker(SeriesMarkers.CIRCLE);
            }
            if (!train.isEmpty()) {
                XYSeries s = chart.addSeries("train", xs(train), ys(train));
                s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
                s.setMarker(SeriesMarkers.DIAMOND);
            }
            if (!valid.isEmpty()) {
                XYSeries s = chart.addSeries("validation", xs(valid), ys(valid));
                s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
                s.setMarker(SeriesMarkers.SQUARE);
            }
            charts.add(chart);
        }
        return charts;
    }

    private static double[] xs(List<double[]> pts) {
        return pts.stream().mapToDouble(p -> p[0]).toArray();
    }

    private static double[] ys(List<double[]> pts) {
        return pts.stream().mapToDouble(p -> p[1]).toArray();
    }

    /** RFC 4180 quoting when needed. */
    static String quote(String s) {
        if (s.indexOf(',') < 0 && s.indexOf('"') < 0 && s.indexOf('\n') < 0 && s.indexOf('\r') < 0) {
            return s;
        }
        return '"' + s.replace("\"", "\"\"") + '"';
    }

    /** Shortest round-tripping decimal, or Python's nan/inf spellings. */
    static String repr(double v) {
        if (Double.isNaN(v)) {
            return "nan";
        }
        if (Double.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        return Double.toString(v);
    }

    /**
     * Builder for {@link TrainingLog}. Required: {@link #setCsvFile}, {@link #setBatchSize}. Not
     * thread-safe.
     */
    public static final class Builder {
        private Path csvFile;
        private Path chartFile;
        private int batchSize;
        private int frequent = 50;
        private boolean autoReset;
        private int chartWidth = 640;
        private int chartHeight = 420;
        private LongSupplier nanoTime = System::nanoTime;

        private Builder() {}

        /**
         * @param csvFile the CSV file (created or truncated)
         * @return this
         */
        public Builder setCsvFile(Path csvFile) {
            this.csvFile = csvFile;
            return this;
        }

        /**
         * @param batchSize samples per batch, {@code >= 1}
         * @return this
         */
        public Builder setBatchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /**
         * @param chartFile the PNG file, or null (default) for no chart
         * @return this
         */
        public Builder optChartFile(Path chartFile) {
            this.chartFile = chartFile;
            return this;
        }

        /**
         * @param frequent record batch rows every this many batches (default 50)
         * @return this
         */
        public Builder optFrequent(int frequent) {
            this.frequent = frequent;
            return this;
        }

        /**
         * @param autoReset call {@code resetLocal()} on the metric after each batch record (default false)
         * @return this
         */
        public Builder optAutoReset(boolean autoReset) {
            this.autoReset = autoReset;
            return this;
        }

        /**
         * @param width width of one chart in pixels (default 640)
         * @param height height of one chart in pixels (default 420)
         * @return this
         */
        public Builder optChartSize(int width, int height) {
            this.chartWidth = width;
            this.chartHeight = height;
            return this;
        }

        /** Test hook: the clock in nanoseconds. */
        Builder optClock(LongSupplier nanoTime) {
            this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
            return this;
        }

        /**
         * Creates the log and writes the CSV header.
         *
         * @return the log (the caller closes it)
         * @throws IOException if the CSV file cannot be created
         * @throws IllegalArgumentException if a required setting is missing or out of range
         */
        public TrainingLog build() throws IOException {
            return new TrainingLog(this);
        }
    }
}
