"""Everything that needs BasicSR: registration (additions only), option files, models/ and datasets/, the fixes
BasicSR 1.4.2 needs on the current stack (`basicsr_fixes`), and the train, test and demo pipelines."""
