"""One training step and what guards it: the step engine (``engine``), mixed precision
(``amp``), out-of-memory recovery (``oom``, ``memory``) and the non-finite loss guard
(``nonfinite``)."""
