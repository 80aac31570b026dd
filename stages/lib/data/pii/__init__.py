"""Personal data and secrets: find them in text and replace them with typed placeholders.

    kinds.py     the kind names and their placeholders (no imports: the params module reads it)
    scrub.py     PiiScrubber: runs the enabled detectors, settles overlaps, replaces the hits
    email.py     e-mail addresses, bounce and obfuscated forms
    phone.py     phone numbers (phonenumbers decides which digit runs are numbers)
    payment.py   card numbers (Luhn) and IBANs (mod-97)
    ip.py        IPv4 and IPv6 addresses
    secrets.py   tokens with published prefixes, private keys, secrets in URLs
    assigned.py  values assigned to a key-ish name ("password: ...", "api_key=...")
    digits.py    the digit runs and the words before a number, shared by the digit kinds

The package imports nothing itself, so that `kinds` loads without phonenumbers and the
detectors' regexes; callers import `PiiScrubber` from `scrub`.
"""
