package dev.kiln.callback;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class FmtTest {
    @Test
    void matchesPythonPercentF() {
        // values checked against CPython 3: '%f' % v and '%.2f' % v
        assertEquals("0.333333", Fmt.f(1.0 / 3));
        assertEquals("0.250000", Fmt.f(0.25));
        assertEquals("1.099261", Fmt.f(1.0992612));
        assertEquals("0.12", Fmt.f(0.125, 2));        // exact tie: half to even
        assertEquals("0.38", Fmt.f(0.375, 2));
        assertEquals("2.67", Fmt.f(2.675, 2));        // 2.67499999... in binary
        assertEquals("3842.26", Fmt.f(3842.2612, 2));
        assertEquals("-0.000000", Fmt.f(-0.0));
        assertEquals("-0.00", Fmt.f(-0.001, 2));
        assertEquals("100000000000000000000.00", Fmt.f(1e20, 2));
        assertEquals("nan", Fmt.f(Double.NaN));
        assertEquals("inf", Fmt.f(Double.POSITIVE_INFINITY, 2));
        assertEquals("-inf", Fmt.f(Double.NEGATIVE_INFINITY));
        assertEquals("0.000001", Fmt.f(5e-7 + 1e-12));
        assertEquals("0.000000", Fmt.f(5e-7 - 1e-12));
    }
}
