package dev.kiln.testutil;

import dev.kiln.engine.Engine;
import dev.kiln.ndarray.Context;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * JUnit extension: after each test, no native array or executor handle is alive and the CPU
 * allocator holds 0 bytes. Use with {@code @ExtendWith(NoLeaks.class)}.
 */
public final class NoLeaks implements BeforeEachCallback, AfterEachCallback {
    @Override
    public void beforeEach(ExtensionContext context) {
        Engine.init();
    }

    @Override
    public void afterEach(ExtensionContext context) {
        Engine.MemoryStats s = Engine.memory(Context.cpu());
        assertEquals(0, Engine.liveHandles(), "live native handles after " + context.getDisplayName());
        assertEquals(0, s.currentBytes(), "outstanding native bytes after " + context.getDisplayName());
        assertEquals(0, s.outstandingBlocks(), "outstanding native blocks after " + context.getDisplayName());
    }
}
