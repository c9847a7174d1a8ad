"""General utilities, the lowest layer of loopwise: crash-safe writes (``atomic``), the one CSV
writer (``csvfile``), the one timestamp format (``isotime``), the NaN-to-JSON rule
(``jsonsafe``), the text-table renderer (``table``), terminal/CSV-safe text (``text``), the
memory unit (``units``), argument checks (``validate``) and the null console (``console``).
Nothing here imports another package of loopwise, or torch."""
