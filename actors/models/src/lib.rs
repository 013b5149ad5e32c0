//! Neural models run with candle on the CPU.
