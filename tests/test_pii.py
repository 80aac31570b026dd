"""PII scrubber: precision and recall on a corpus of positives and look-alikes, and scrub() behaviour."""
from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest

from stages.lib.data.pii import kinds, phone
from stages.lib.data.pii.kinds import PLACEHOLDERS
from stages.lib.data.pii.payment import iban_checksum_ok, luhn_ok
from stages.lib.data.pii.scrub import PiiScrubber
from stages.lib.errors import UserError
from stages.lib.params import PiiParams

CASES_FILE = Path(__file__).parent / "data" / "pii" / "cases.txt"
MARK = re.compile(r"\[\[(.*?)\]\]", re.S)


def load_cases() -> list[tuple[str, str, list[tuple[int, int]]]]:
    """(kind, plain text, expected spans) per case; negatives have no spans."""
    cases = []
    for number, line in enumerate(CASES_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, label, marked = line.split(" ", 2)
        assert kind in PLACEHOLDERS and label in "+-", f"{CASES_FILE.name}:{number}: bad case {line!r}"
        marked = marked.replace("\\n", "\n")
        text, spans, pos = "", [], 0
        for m in MARK.finditer(marked):
            text += marked[pos:m.start()]
            spans.append((len(text), len(text) + len(m.group(1))))
            text += m.group(1)
            pos = m.end()
        text += marked[pos:]
        assert bool(spans) == (label == "+"), f"{CASES_FILE.name}:{number}: '+' needs [[marks]], '-' has none"
        cases.append((kind, text, spans))
    return cases


CASES = load_cases()


def test_kinds_are_the_param_kinds_in_order_with_a_placeholder_each():
    assert tuple(PiiParams().kinds) == kinds.PII_KINDS == tuple(PLACEHOLDERS)


def test_kinds_import_without_phonenumbers():
    # The params module imports kinds: checking params must not load the detectors.
    code = "import sys, stages.lib.data.pii.kinds; print(sorted(m for m in sys.modules if 'phonenumbers' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent).stdout
    assert out.strip() == "[]"


def test_missing_alternate_formats_name_the_pinned_phonenumbers(monkeypatch):
    # Spain's "622 418 530" is one of libphonenumber's alternate formats: without them the
    # scrubber would silently miss it, so their absence is an error that says what to install.
    pinned = re.search(r"^phonenumbers==(\S+)", (Path(__file__).parent.parent / "requirements.txt").read_text(),
                       re.M).group(1)
    for name in [n for n in vars(phonenumbers.data) if n.startswith("PHONE_ALT_FORMAT_")]:
        monkeypatch.delattr(phonenumbers.data, name)
    phone._alternate_formats.cache_clear()
    phone._national_ok.cache_clear()  # no verdict from an earlier test may answer for the number
    try:
        with pytest.raises(UserError, match=re.escape(f"phonenumbers=={pinned}")):
            PiiScrubber(["phone"]).scrub("Antonio Gil | 622 418 530")
    finally:
        phone._alternate_formats.cache_clear()  # the next use reads the restored tables


def test_corpus_has_enough_cases_per_kind():
    for kind in PLACEHOLDERS:
        positives = sum(len(spans) for k, _, spans in CASES if k == kind)
        negatives = sum(1 for k, _, spans in CASES if k == kind and not spans)
        assert positives >= 8 and negatives >= 8, f"{kind}: {positives} positives, {negatives} negatives"


def _evaluate(scrubber_for_kind) -> list[str]:
    """Compare found and expected hits over the corpus; return one message per kind below 1.0."""
    failures = []
    for kind in PLACEHOLDERS:
        tp, misses, false_hits = 0, [], []
        for case_kind, text, spans in CASES:
            scrubber = scrubber_for_kind(case_kind)
            expected = {(case_kind, s, e) for s, e in spans}
            found = set(scrubber.find(text))
            tp += len({h for h in expected & found if h[0] == kind})
            misses += [f"{text[s:e]!r} in {text!r}" for k, s, e in expected - found if k == kind]
            false_hits += [f"{text[s:e]!r} in {text!r}" for k, s, e in found - expected if k == kind]
        precision = tp / (tp + len(false_hits)) if tp + len(false_hits) else 1.0
        recall = tp / (tp + len(misses)) if tp + len(misses) else 1.0
        if precision < 1.0 or recall < 1.0:
            failures.append(f"{kind}: precision {precision:.2f}, recall {recall:.2f}\n"
                            + "".join(f"  missed {m}\n" for m in misses)
                            + "".join(f"  false hit {f}\n" for f in false_hits))
    return failures


def test_precision_and_recall_with_all_kinds():
    everything = PiiScrubber(list(kinds.PII_KINDS))
    failures = _evaluate(lambda kind: everything)
    assert not failures, "\n" + "\n".join(failures)


def test_precision_and_recall_one_kind_at_a_time():
    scrubbers = {kind: PiiScrubber([kind]) for kind in kinds.PII_KINDS}
    failures = _evaluate(lambda kind: scrubbers[kind])
    assert not failures, "\n" + "\n".join(failures)


def test_scrub_replaces_with_placeholder_and_keeps_surrounding_text():
    scrubber = PiiScrubber(list(kinds.PII_KINDS))
    for kind, text, spans in CASES:
        expected, pos = "", 0
        for start, end in spans:
            expected += text[pos:start] + PLACEHOLDERS[kind]
            pos = end
        expected += text[pos:]
        scrubbed, counts = scrubber.scrub(text)
        assert scrubbed == expected
        assert counts == ({kind: len(spans)} if spans else {})


def test_scrub_counts_several_kinds():
    text = ("Mail ann@example.org or bob@example.net, call (555) 123-4567, "
            "host 10.0.0.1 or 2001:db8::1, card 4111-1111-1111-1111, "
            "IBAN GB82 WEST 1234 5698 7654 32, token=abc123def456ghi7.")
    scrubbed, counts = PiiScrubber(list(kinds.PII_KINDS)).scrub(text)
    assert scrubbed == ("Mail <EMAIL> or <EMAIL>, call <PHONE>, host <IPV4> or <IPV6>, card <CREDIT_CARD>, "
                        "IBAN <IBAN>, token=<SECRET>.")
    assert counts == {"email": 2, "phone": 1, "ipv4": 1, "ipv6": 1, "credit_card": 1, "iban": 1, "secret": 1}


def test_find_is_sorted_and_non_overlapping():
    # ::ffff:192.0.2.1 holds an IPv4 address, the IBAN holds card-like groups, the secret an e-mail.
    text = "x ::ffff:192.0.2.1 y ES91 2100 0418 4502 0005 1332 z password=s3cret@example.com 10.1.1.1"
    hits = PiiScrubber(list(kinds.PII_KINDS)).find(text)
    assert [h[0] for h in hits] == ["ipv6", "iban", "secret", "ipv4"]
    assert all(a[2] <= b[1] for a, b in zip(hits, hits[1:]))


def test_kinds_not_enabled_are_left_alone():
    text = "Write to ann@example.org or call (555) 123-4567 from 10.0.0.1."
    scrubbed, counts = PiiScrubber(["email"]).scrub(text)
    assert scrubbed == "Write to <EMAIL> or call (555) 123-4567 from 10.0.0.1."
    assert counts == {"email": 1}
    scrubbed, counts = PiiScrubber(["phone", "ipv4"]).scrub(text)
    assert scrubbed == "Write to ann@example.org or call <PHONE> from <IPV4>."
    assert counts == {"phone": 1, "ipv4": 1}


def test_no_kinds_changes_nothing():
    scrubber = PiiScrubber([])
    for _, text, _ in CASES:
        assert scrubber.scrub(text) == (text, {})
        assert scrubber.find(text) == []


def test_empty_and_plain_text():
    scrubber = PiiScrubber(list(kinds.PII_KINDS))
    assert scrubber.scrub("") == ("", {})
    verse = "Of Man's first disobedience, and the fruit\nOf that forbidden tree (Book 1, lines 1-26, 1667)."
    assert scrubber.scrub(verse) == (verse, {})


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown PII kinds"):
        PiiScrubber(["email", "ssn"])


def test_scrubber_survives_pickling():
    scrubber = PiiScrubber(["email", "secret", "iban"])
    clone = pickle.loads(pickle.dumps(scrubber))
    assert clone.kinds == scrubber.kinds
    for _, text, _ in CASES:
        assert clone.scrub(text) == scrubber.scrub(text)


def test_checksums():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112")
    assert iban_checksum_ok("GB82WEST12345698765432") and iban_checksum_ok("FR1420041010050500013M02606")
    assert not iban_checksum_ok("GB82WEST12345698765433")


# ----------------------------------------------------------------- issue 12: classes that were missed
# Each case: (text, text after scrub with all kinds). Values are made up for these tests and
# appear nowhere in bench/pii/.

def _scrubbed(text: str) -> str:
    return PiiScrubber(list(kinds.PII_KINDS)).scrub(text)[0]


@pytest.mark.parametrize("text, expected", [
    ("Tel: 020 7946 0321", "Tel: <PHONE>"),                    # UK, national format
    ("Telefon: 030 12345678", "Telefon: <PHONE>"),             # Germany
    ("Tél : 01 42 68 53 00", "Tél : <PHONE>"),                 # France
    ("Telefoon: 020-5551234", "Telefoon: <PHONE>"),            # Netherlands
    ("Teléfono: 912 34 56 78", "Teléfono: <PHONE>"),           # Spain, no trunk prefix
    ("Tel. 06 6982 1234", "Tel. <PHONE>"),                     # Italy
    ("電話 03-1234-5678", "電話 <PHONE>"),                       # Japan
    ("Fone: (11) 3456-7890", "Fone: <PHONE>"),                 # Brazil
    ("Mobile: 98765 12345", "Mobile: <PHONE>"),                # India, mobile without its '0'
    ("Ring 0161 496 0123.", "Ring <PHONE>."),                  # a valid number needs no phone word
    ("Sales 912 34 56 78 today", "Sales <PHONE> today"),       # nor one grouped as the library writes it
    ("call 2125550187 now", "call <PHONE> now"),               # US, unbroken, after a phone word
    ("(212) 555-0187 ext. 42", "<PHONE>"),                     # the extension goes too
    ("212-555-0187x42", "<PHONE>"),
    ("id,name,phone\n7,Ann,2125550187\n", "id,name,phone\n7,Ann,<PHONE>\n"),  # the CSV header says so
])
def test_phone_numbers_in_national_format(text, expected):
    assert _scrubbed(text) == expected


@pytest.mark.parametrize("text", [
    "The 4155550123 units left the dock.",      # unbroken, and no word says it is a phone number
    "Order 4155-550-123 shipped.",
    "Boston, MA 02110-1301, USA",               # ZIP+4
    " 8  9 10 11 12 13 14",                     # a calendar row
    "01/19/04 01/20/04 01/21/04",               # dates joined by spaces
    "octdigits = '01234567'",
    "id,name,joined\n7,Ann,20240117\n",         # a CSV column that is not a phone column
    "Call random.choice(range(1, 947948399)) once.",  # a function's argument, even after a phone word
    "byte order: 44 33 22 11 in memory",        # a row of two-digit values
])
def test_number_look_alikes_are_not_phones(text):
    assert _scrubbed(text) == text


@pytest.mark.parametrize("text, expected", [
    ("id,name,card,exp\n7,Ann Lee,4111111111111111,12/27\n", "id,name,card,exp\n7,Ann Lee,<CREDIT_CARD>,12/27\n"),
    ("id;name;card\n7;Ann;5500 0000 0000 0004\n", "id;name;card\n7;Ann;<CREDIT_CARD>\n"),
    ("iban: de89 3704 0044 0532 0130 00", "iban: <IBAN>"),    # lower case, grouped
    ("acct nl91abna0417164300.", "acct <IBAN>."),             # lower case, unbroken
])
def test_cards_in_csv_rows_and_lower_case_ibans(text, expected):
    assert _scrubbed(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("mail ann.lee at example dot org", "mail <EMAIL>"),
    ("ann(at)example.de", "<EMAIL>"),
    ("ann [at] example [dot] co [dot] uk", "<EMAIL>"),
    ("Return-Path: <bounce-ann=example.com@lists.example.net>", "Return-Path: <<EMAIL>>"),  # whole, not from '='
    ("<prvs=0a1b2c3d4e=ann@example.com>", "<<EMAIL>>"),
    ("GET /u?email=ann@example.com", "GET /u?email=<EMAIL>"),  # a key and '=' before it stay
])
def test_obfuscated_and_bounce_addresses(text, expected):
    assert _scrubbed(text) == expected


@pytest.mark.parametrize("text", [
    "look at example.com for details", "arrived at Amazon.com today", "logo@2x.png and icon@1.5x.png",
])
def test_address_look_alikes(text):
    assert _scrubbed(text) == text


@pytest.mark.parametrize("text, expected", [
    # credentials in a URL: the user and password go, the host stays, and no <EMAIL>
    ("DSN postgres://app:S3cr3t-pw@db.internal:5432/shop", "DSN postgres://<SECRET>@db.internal:5432/shop"),
    ("redis://:p@ss@cache.local:6379", "redis://<SECRET>@cache.local:6379"),
    # webhook URLs carry their secret in the path: the whole URL goes
    ("https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx ok", "<SECRET> ok"),
    ("https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "<SECRET>"),
    # published token prefixes
    ("tok glpat-AbCdEf0123456789xYzW", "tok <SECRET>"),
    ("npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "<SECRET>"),
    ("hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "<SECRET>"),
    ("SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", "<SECRET>"),
    ("twilio SK0123456789abcdef0123456789abcdef", "twilio <SECRET>"),
    # a passphrase without digits, on a config line, goes to the end of the line
    ("db:\n  user: app\n  password: tulip anchor violin meadow\n  port: 5432\n",
     "db:\n  user: app\n  password: <SECRET>\n  port: 5432\n"),
    ("Oops, my pwd: Marble-Kettle-Orbit# was in the log", "Oops, my pwd: <SECRET> was in the log"),
    # punctuation inside a value does not end it early
    ('login(password="x(Y)&z!q9,w")', 'login(password="<SECRET>")'),
    ("DB_PASSWORD=Ab(c&d)e;f\nDB_USER=app\n", "DB_PASSWORD=<SECRET>\nDB_USER=app\n"),
    ("GET /api?api_key=Zx9-Qw8.Er7!Ty6&page=2", "GET /api?api_key=<SECRET>&page=2"),
])
def test_secrets_are_replaced_whole(text, expected):
    assert _scrubbed(text) == expected


@pytest.mark.parametrize("text", [
    "Upgraded to version 10.8.34.144 today",    # four-part versions are no IPv4 addresses
    "pin requests==2.1.7.169",
    "APP_VERSION=1.2.3.4",
    "OID 2.5.4.3 is the common name",
    "Mozilla/5.0 (X11; rv:1.9.5.20) Gecko",
    "see section 4.7.7.4",
    "the tag *::8* marks it",                   # "::" and one group is no IPv6 address
    "secret_name: prod/payments/db-credentials",  # keys named like secrets, values that are not
    "token_url: https://auth.example.com/oauth/token",
    "password_min_length: 12",
    "api_key_header: X-API-Key",
    "PASSWORD=${DB_PASSWORD}",
    "passwd = getpass.getpass(prompt)",           # code: expressions are no values
    "conn = connect(host, password=db_password)",
    "win_getpass(prompt='Password: ', stream=None)",
    "the password: Friendship.",                  # a story, not a config file
    "it might\npass: yet the scarfs and the bannerets about thee",
])
def test_secret_and_address_look_alikes(text):
    assert _scrubbed(text) == text


def test_version_context_does_not_hide_real_hosts():
    assert _scrubbed("ssh from 203.0.113.9 port 22, build server 10.0.0.5") == \
        "ssh from <IPV4> port 22, build server <IPV4>"
    assert _scrubbed("mysql://app:pw9@10.1.2.3/db") == "mysql://<SECRET>@<IPV4>/db"


def test_literary_text_survives():
    text = ("ACT III. SCENE 2. A hall in the castle, 1603.\n"
            "Enter HAMLET at 10:30, reading (pp. 471-484; John 3:16; Psalm 23:1-6).\n"
            "Let it pass: the time is out of joint, 1608-1623, and at the last we meet at Elsinore.\n")
    assert _scrubbed(text) == text


# ----------------------------------------------------------------- issue 12, second round: classes that an
# independent evaluation set found missed or over-matched. The strings are made up here; the numbers are
# valid in their numbering plans (phonenumbers) but none is taken from that set or from bench/pii/.

@pytest.mark.parametrize("text, expected", [
    # Spain writes numbers in groups the library lists as alternate formats: 3-3-3 and 2-3-2-2
    ("Antonio Gil | 622 418 530 | antonio@example.es", "Antonio Gil | <PHONE> | <EMAIL>"),
    ("oficina;\"954 227 310\";Sevilla", "oficina;\"<PHONE>\";Sevilla"),
    ("Tlf. 95 422 73 10\n", "Tlf. <PHONE>\n"),
    ("Llámenos al 622418530.", "Llámenos al <PHONE>."),                  # unbroken, after "llamar"
    ("Móvil: (+34) 622 418 530\n", "Móvil: <PHONE>\n"),                 # "(+34)" goes too
    # Brazil: the mobile 9 written apart, and unbroken numbers after a word or in a phone column
    ("Meu celular (21) 9 8123-4567, obrigado", "Meu celular <PHONE>, obrigado"),
    ("id,nome,celular\n4,Ana,\"21981234567\"\n", "id,nome,celular\n4,Ana,\"<PHONE>\"\n"),
    ("Ligue para 21981234567.", "Ligue para <PHONE>."),
    # unbroken ten-digit numbers after a phone word, in English, Hindi-English and Italian settings
    ("Direct: 2125550187\n", "Direct: <PHONE>\n"),
    ("Office: 6175550123 x.42\n", "Office: <PHONE>\n"),                 # "x.42" is an extension
    ("Helpline: 9876512345 (24x7)", "Helpline: <PHONE> (24x7)"),
    ("Chiamateci al 3471234567, grazie", "Chiamateci al <PHONE>, grazie"),
    ("Chiamateci al 347 1234567.", "Chiamateci al <PHONE>."),          # Italian mobile code, then the rest
    ("or text 2125550187. Bye", "or text <PHONE>. Bye"),
    # France writes numbers with dots as well
    ("Portable : 06.12.34.56.78\n", "Portable : <PHONE>\n"),
    ("Ann;ann@example.fr;06.12.34.56.78;Lyon", "Ann;<EMAIL>;<PHONE>;Lyon"),
    # full-width digits (Japanese input methods), found on the folded text, replaced in the original
    ("携帯: ０９０－１２３４－５６７８\n", "携帯: <PHONE>\n"),
    ("お問い合わせ: ０３－３２１１－４４５５。", "お問い合わせ: <PHONE>。"),
])
def test_phone_formats_of_the_second_round(text, expected):
    assert _scrubbed(text) == expected


@pytest.mark.parametrize("text", [
    "value = 412 * 3127 - 55410",                   # arithmetic: a spaced minus between two numbers
    "x = (731 + 2216) - 80457 / 3",
    "txn_id,card_last4,amount\n071234568,4242,12.50\n",  # an id column, the row's first field
    "ref;\"071234568\";12.50\n",                    # an id after "ref"
    "Rua das Flores, 12\n05412-000 São Paulo / SP\n",  # a Brazilian postcode (CEP), with or without hyphen
    "CEP 22250-040 Rio de Janeiro",
    "Jardim Botânico\n22250040 Rio de Janeiro / RJ\n",
    "Part No. 052-3381-17",                        # part and catalogue numbers
    "Cat. No. 18-2240-07 (Acme)",
    "arn:aws:iam::052338117021:role/deploy",       # an AWS account id inside an ARN
    "arn:aws:sqs:us-east-1:052338117021:orders",
    "Montant : 622 418 530,25 €",                   # an amount in thousands, with decimals
    "622 418 530 habitantes",                       # a count: a word follows
    "Bevölkerung: 83.166.711 Einwohner",
    "Version 06.12.34.56 is out",                   # four groups: not a French number
])
def test_second_round_number_look_alikes(text):
    assert _scrubbed(text) == text


@pytest.mark.parametrize("text, expected", [
    # a Telegram bot token in the Bot API's URL, whatever its letters
    ("WEBHOOK=https://api.telegram.org/bot987654321:q1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZxCvB/getMe\n",
     "WEBHOOK=https://api.telegram.org/bot<SECRET>/getMe\n"),
    # a Google OAuth access token
    ('curl -H "Authorization: Bearer ya29.Qm7xT2vB9nK4pL1sD8fG3hJ6wE0rY5uI"',
     'curl -H "Authorization: Bearer <SECRET>"'),
    ("client.set('ya29.Qm7xT2vB9nK4pL1sD8fG3hJ6wE0rY5uI')", "client.set('<SECRET>')"),
    # an AWS secret access key may start with '/': base64, not a path
    ("AWS_REGION=eu-west-1\nAWS_SECRET_ACCESS_KEY=/k9Zt2Qw8Er4Ty6Ui1Op3As5Df7Gh0Jk2Lz4Xc6V\n",
     "AWS_REGION=eu-west-1\nAWS_SECRET_ACCESS_KEY=<SECRET>\n"),
    # a YAML value runs to the end of its line, closing bracket and all
    ("services:\n  db:\n    environment:\n      MYSQL_PASSWORD: q7!Lm#2xZ)\n      MYSQL_USER: shop\n",
     "services:\n  db:\n    environment:\n      MYSQL_PASSWORD: <SECRET>\n      MYSQL_USER: shop\n"),
    # prose that gives a login or wi-fi password: a lower-case word is one to type
    ("For the guest wifi, the password: copperlantern (ask at the desk).",
     "For the guest wifi, the password: <SECRET> (ask at the desk)."),
    # an address with a spelled-out dot after a real '@'
    ("Mail: jo.berg@firma dot de\n", "Mail: <EMAIL>\n"),
    ("write to jo.berg@mail.firma dot de today", "write to <EMAIL> today"),
])
def test_secrets_and_addresses_of_the_second_round(text, expected):
    assert _scrubbed(text) == expected


@pytest.mark.parametrize("text", [
    "token_endpoint_auth_method: client_secret_post\nscope: openid\n",  # snake_case words are identifiers
    "TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt\nAPP_ENV=prod\n",
    "auth_token: session_cookie_name\nport: 80\n",
    "PASSWORD_FILE=/run/secrets/db_password\nUSER=app\n",             # a path stays a path
    "password: /etc/app/keys\nuser: app\n",
    "and all my heart, and the password: remembrance.",              # a story, not a login
    "the password: whatever you like, he said",
])
def test_second_round_secret_look_alikes(text):
    assert _scrubbed(text) == text


def test_phone_and_ipv6_look_alike_fixes_keep_real_numbers():
    assert _scrubbed("Tel: 44 33 22 11") == "Tel: <PHONE>"  # a phone word still makes two-digit groups a number
    assert _scrubbed("ring me (tel 4074897978)") == "ring me (tel <PHONE>)"  # parentheses, not a call
    assert _scrubbed("listen on ::1 and 2001:db8::8") == "listen on <IPV6> and <IPV6>"
