"""Throughput, memory and compile-time benchmarks; each module's ``main()`` writes JSON."""
