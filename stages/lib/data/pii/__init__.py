"""Personal data and secrets: find them in text and replace them with typed placeholders.

`scrub.PiiScrubber` is the entry point. The package imports nothing itself, so that
`kinds` (the kind names and placeholders, which the params module reads) loads without
phonenumbers and the detectors' regexes.
"""
