"""Build the labelled PII set that bench/pii.py scores: dev.jsonl, heldout.jsonl and real.jsonl.

    pip install faker==40.54.0 phonenumbers==9.0.43
    python bench/pii/generate.py          # rewrites the three files (deterministic)

dev and heldout are synthetic: faker values in ten locales placed in realistic
settings (mail headers, signatures, log lines, .env and YAML files, CSV rows,
code, JSON, git logs, forum posts, invoices, plain prose). They differ in seed
and in phrasing: every setting draws its wording from a list of variants, dev
from the even ones and heldout from the odd ones, so a rule tuned to a dev
phrasing is not rewarded on heldout. real.jsonl is header and body lines of the
mail messages that CPython ships as email test data (test/test_email/data),
labelled by a strict regex and checked by hand. fresh.jsonl is a third synthetic
split (another seed, the heldout phrasings), made only after the scrubber's
changes were done: heldout was looked at during the work, fresh was not.

One JSON object per line:
    {"id", "setting", "locale", "text",
     "spans":     [[start, end, kind], ...]     the PII that must disappear
     "negatives": [[start, end, class], ...]}   look-alikes that must survive
Phone numbers come from faker's own formats and from phonenumbers' national
formatting of a faker number (faker writes Spanish, Italian and Brazilian numbers
mostly with '+'), so every locale has numbers in national format.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import random
import re
import string
import sys
import sysconfig
from datetime import datetime
from pathlib import Path

import phonenumbers as pn
from faker import Faker

OUT = Path(__file__).resolve().parent
LOCALES = {"en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "nl_NL": "NL", "es_ES": "ES",
           "it_IT": "IT", "ja_JP": "JP", "pt_BR": "BR", "en_IN": "IN"}
ALNUM = string.ascii_letters + string.digits
FIRST_DAY, LAST_DAY = datetime(1970, 1, 1), datetime(2025, 12, 31)


class Doc:
    """Text assembled from plain parts, labelled PII and labelled look-alikes."""

    def __init__(self):
        self.text, self.spans, self.negatives = "", [], []

    def add(self, *parts: str) -> "Doc":
        self.text += "".join(parts)
        return self

    def pii(self, kind: str, value: str) -> "Doc":
        self.spans.append([len(self.text), len(self.text) + len(value), kind])
        self.text += value
        return self

    def neg(self, cls: str, value: str) -> "Doc":
        self.negatives.append([len(self.text), len(self.text) + len(value), cls])
        self.text += value
        return self


class Gen:
    """Values of each kind for one locale; `variant` picks the phrasing half (0 dev, 1 heldout)."""

    def __init__(self, locale: str, seed: int, variant: int):
        self.locale, self.region, self.variant = locale, LOCALES[locale], variant
        self.f = Faker(locale)
        self.f.seed_instance(seed)
        self.en = Faker("en_US")
        self.en.seed_instance(seed + 1)
        self.r = random.Random(seed)

    def date_fmt(self, pattern: str = "%Y-%m-%d") -> str:
        """A date in a fixed range (faker's own date() runs up to today: the files would change daily)."""
        return self.f.date_time_between(FIRST_DAY, LAST_DAY).strftime(pattern)

    def time_fmt(self, pattern: str = "%H:%M:%S") -> str:
        return self.f.date_time_between(FIRST_DAY, LAST_DAY).strftime(pattern)

    def pick(self, options: list):
        """One of the options of this split's half (the even or the odd ones)."""
        half = options[self.variant::2] or options
        return self.r.choice(half)

    def rand(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def name(self) -> str:
        return self.f.name().replace("\n", " ")

    def user(self) -> str:
        user = self.en.user_name() if self.locale == "ja_JP" else self.f.user_name()
        return user if user.isascii() else self.en.user_name()

    # ---------------------------------------------------------------- positives

    def email(self) -> str:
        domain = self.f.domain_name() if self.f.domain_name().isascii() else self.en.domain_name()
        return self.r.choice([
            self.f.email, self.f.free_email, self.f.company_email,
            lambda: f"{self.user()}@{domain}",
            lambda: f"{self.en.first_name().lower()}.{self.en.last_name().lower()}@{domain}",
            lambda: f"{self.user().upper()}@{domain.upper()}"])()

    def obfuscated_email(self) -> str:
        user, domain = self.user(), self.en.domain_name()
        host, tld = domain.rsplit(".", 1)
        return self.pick([
            f"{user} at {host} dot {tld}", f"{user}(at){domain}", f"{user} [at] {host} [dot] {tld}",
            f"{user}[at]{domain}", f"{user} (at) {host} (dot) {tld}", f"{user} AT {host} DOT {tld}",
            f"{user}{{at}}{host}{{dot}}{tld}", f"{user} at {host}.{tld}".replace(user, f"{user}.{self.r.randint(1, 99)}")])

    def bounce_email(self) -> str:
        user, domain = self.user(), self.en.domain_name()
        return self.r.choice([
            f"bounce-{user}={domain}@lists.{self.en.domain_name()}",
            f"bounces+{user}={domain}@em.{self.en.domain_name()}",
            f"prvs={self.rand(10, '0123456789abcdef')}={user}@{domain}",
            f"SRS0={self.rand(4)}={self.rand(2, 'ABCDEFGHIJ')}={domain}={user}@forward.{self.en.domain_name()}"])

    def _national(self) -> str:
        """A faker number of this locale, reformatted by phonenumbers in national format."""
        for _ in range(50):
            raw = self.f.phone_number()
            try:
                number = pn.parse(raw, self.region)
            except pn.NumberParseException:
                continue
            if pn.is_valid_number(number) and number.country_code == pn.country_code_for_region(self.region):
                return pn.format_number(number, pn.PhoneNumberFormat.NATIONAL)
        return self.f.phone_number()

    def phone(self) -> str:
        roll = self.r.random()
        if roll < 0.45:
            return self.f.phone_number()
        if self.region == "US" and roll < 0.65:
            digits = f"{self.r.randint(2, 9)}{self.rand(2, '0123456789')}{self.r.randint(2, 9)}{self.rand(6, '0123456789')}"
            ext = self.r.randint(1, 9999)
            return self.r.choice([digits, f"({digits[:3]}) {digits[3:6]}-{digits[6:]} ext. {ext}",
                                  f"{digits[:3]}-{digits[3:6]}-{digits[6:]} x{ext}", f"1{digits}"])
        return self._national()

    def card(self) -> str:
        number = self.f.credit_card_number()
        if len(number) == 16 and self.r.random() < 0.5:
            sep = self.r.choice(" -")
            return sep.join(number[i:i + 4] for i in range(0, 16, 4))
        return number

    def iban(self) -> str:
        iban = self.f.iban()
        if self.r.random() < 0.4:
            iban = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        return iban.lower() if self.r.random() < 0.25 else iban

    def ipv4(self) -> str:
        return self.r.choice([self.f.ipv4_public, self.f.ipv4_private])()

    def ipv6(self) -> str:
        address = self.f.ipv6()
        return self.r.choice([address, str(ipaddress.IPv6Address(address)),
                              f"2001:db8:{self.r.randint(1, 0xffff):x}::{self.r.randint(1, 0xffff):x}",
                              f"fe80::{self.r.randint(1, 0xffff):x}:{self.r.randint(1, 0xffff):x}"])

    def token(self) -> str:
        hexd = "0123456789abcdef"
        b64 = ALNUM + "+/"
        return self.r.choice([
            lambda: "ghp_" + self.rand(36), lambda: "github_pat_11" + self.rand(20) + "_" + self.rand(59),
            lambda: "glpat-" + self.rand(20, ALNUM + "-_"), lambda: "npm_" + self.rand(36),
            lambda: "hf_" + self.rand(34, string.ascii_letters), lambda: "xoxb-" + self.rand(12, string.digits) + "-" + self.rand(13, string.digits) + "-" + self.rand(24),
            lambda: "xoxp-" + self.rand(11, string.digits) + "-" + self.rand(12, string.digits) + "-" + self.rand(32, hexd),
            lambda: "sk_live_" + self.rand(24), lambda: "rk_live_" + self.rand(24), lambda: "whsec_" + self.rand(32),
            lambda: "sk-proj-" + self.rand(48, ALNUM + "-_"), lambda: "sk-ant-api03-" + self.rand(90, ALNUM + "-_"),
            lambda: "AKIA" + self.rand(16, string.ascii_uppercase + string.digits),
            lambda: "AIza" + self.rand(35, ALNUM + "-_"),
            lambda: "SG." + self.rand(22, ALNUM + "-_") + "." + self.rand(43, ALNUM + "-_"),
            lambda: "SK" + self.rand(32, hexd), lambda: "AC" + self.rand(32, hexd),
            lambda: "key-" + self.rand(32, hexd), lambda: "hvs." + self.rand(24),
            lambda: "dop_v1_" + self.rand(64, hexd), lambda: "shpat_" + self.rand(32, hexd),
            lambda: "pypi-AgEIcHlwaS5vcmc" + self.rand(60, ALNUM + "-_"),
            lambda: f"{self.r.randint(10**8, 10**10)}:AA" + self.rand(33, ALNUM + "-_"),
            lambda: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + base64.urlsafe_b64encode(
                json.dumps({"sub": self.user(), "iat": self.r.randint(1.5e9, 1.8e9)}).encode()).decode().rstrip("=")
            + "." + self.rand(43, ALNUM + "-_"),
            lambda: self.rand(40, b64)])()

    def password(self) -> str:
        words = [w for w in self.en.words(6) if w.isalpha()]
        return self.r.choice([
            lambda: self.f.password(length=self.r.randint(10, 16)),
            lambda: self.f.password(length=12, special_chars=True, digits=False),
            lambda: "-".join(words[:4]), lambda: "".join(w.capitalize() for w in words[:3]) + self.r.choice("!?#$%&"),
            lambda: self.rand(8, string.ascii_letters) + self.r.choice(["!", "&", "(", ")", ",", ";", "'"]) + self.rand(6, ALNUM),
        ])()

    def passphrase(self) -> str:
        return " ".join(w for w in self.en.words(4))

    def webhook(self) -> str:
        return self.r.choice([
            lambda: f"https://hooks.slack.com/services/T{self.rand(8, string.ascii_uppercase + string.digits)}/B{self.rand(10, string.ascii_uppercase + string.digits)}/{self.rand(24)}",
            lambda: f"https://discord.com/api/webhooks/{self.r.randint(10**17, 10**18)}/{self.rand(68, ALNUM + '-_')}",
            lambda: f"https://outlook.office.com/webhook/{self.f.uuid4()}@{self.f.uuid4()}/IncomingWebhook/{self.rand(32, '0123456789abcdef')}/{self.f.uuid4()}",
            lambda: f"https://hooks.zapier.com/hooks/catch/{self.r.randint(10**6, 10**7)}/{self.rand(6, string.ascii_lowercase + string.digits)}/",
        ])()

    def url_credentials(self, d: Doc) -> Doc:
        """A URL with a user and password in it; the password is the secret, an IP host is labelled too."""
        scheme = self.r.choice(["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "https", "ftp"])
        password = self.r.choice([self.rand(16), self.f.password(length=14, special_chars=False), self.en.word() + str(self.r.randint(10, 99))])
        d.add(f"{scheme}://{self.user()}:").pii("secret", password).add("@")
        if self.r.random() < 0.3:
            d.pii("ipv4", self.f.ipv4_private())
        else:
            d.add(self.r.choice([self.en.domain_name(), f"db-{self.r.randint(1, 9)}.internal"]))
        return d.add(f":{self.r.randint(1000, 9999)}/{self.en.word()}")

    # ---------------------------------------------------------------- look-alikes

    def version4(self) -> tuple[str, str]:
        v = ".".join(str(self.r.randint(0, 255)) for _ in range(4))
        return self.pick([("version ", v), ("==", v), ("Version: ", v), ("build ", v), ("firmware ", v),
                          ("v", v), ("release ", v), (">=", v), ("Chrome/", v), ("rv:", v)])

    def oid(self) -> str:
        return self.r.choice(["1.3.6.1.4.1." + str(self.r.randint(1, 60000)),
                              "2.5.4." + str(self.r.randint(1, 60)), "1.2.840.113549.1.1." + str(self.r.randint(1, 14)),
                              "2.5.29." + str(self.r.randint(1, 40)), "0.9.2342.19200300.100.1.1"])

    def date(self) -> str:
        return self.date_fmt(self.r.choice(["%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%Y/%m/%d"]))

    def time(self) -> str:
        return self.time_fmt(self.r.choice(["%H:%M:%S", "%H:%M", "%H:%M:%S.%f"]))

    def isbn(self) -> str:
        return self.r.choice([self.f.isbn13, self.f.isbn10, lambda: self.f.isbn13().replace("-", "")])()

    def order_no(self) -> str:
        return self.r.choice([f"{self.r.randint(1000, 9999)}-{self.r.randint(100, 999)}-{self.r.randint(100, 999)}",
                              f"{self.r.randint(2019, 2025)}-{self.r.randint(0, 999999):06d}",
                              str(self.r.randint(10**7, 10**10)), f"{self.r.randint(100, 999)}-{self.r.randint(1000000, 9999999)}-{self.r.randint(1000000, 9999999)}"])

    def secret_config(self) -> tuple[str, str]:
        w = self.en.word
        return self.r.choice([
            ("secret_name: ", f"prod/{w()}/db-credentials"), ("secret_name = ", f"{w()}/{w()}-credentials-v{self.r.randint(2, 9)}"),
            ("token_url: ", f"https://auth.{self.en.domain_name()}/oauth2/v{self.r.randint(1, 3)}/token"),
            ("password_min_length: ", str(self.r.randint(8, 16))), ("api_key_header: ", "X-API-Key"),
            ("secret_ref: ", f"vault://kv/data/{w()}/{w()}{self.r.randint(1, 99)}"), ("TOKEN_TTL_SECONDS=", str(self.r.randint(300, 86400))),
            ("passwordless: ", "true"), ("secret_arn: ", f"arn:aws:secretsmanager:eu-west-1:{self.r.randint(10**11, 10**12)}:secret:{w()}-{self.rand(6)}"),
            ("token_endpoint=", f"/api/v{self.r.randint(1, 3)}/oauth/token"), ("password_reset_path: ", f"/users/{w()}/reset-password/{self.r.randint(1, 999)}"),
            ("SECRET_KEY_FILE=", f"/run/secrets/{w()}_key{self.r.randint(1, 9)}"), ("credentials_file: ", f"~/.config/{w()}/credentials.json"),
            ("api_key_id: ", f"key-id-{self.r.randint(100, 999)}"), ("token_type: ", "Bearer")])

    def placeholder(self) -> tuple[str, str]:
        return self.r.choice([("password: ", "********"), ("api_key=", "YOUR_API_KEY_HERE"), ("token: ", "<redacted>"),
                              ("PASSWORD=", "${DB_PASSWORD}"), ("secret: ", "{{ vault_secret }}"), ("password=", "changeme"),
                              ("client_secret: ", "REPLACE_ME"), ("api_key = ", "os.environ['API_KEY']"), ("password: ", "none"),
                              ("token=", "xxxxxxxxxxxxxxxx"), ("SECRET_KEY=", "%(secret_key)s"), ("password: ", "<your-password>")])


# -------------------------------------------------------------------- settings

def mail_header(g: Gen) -> Doc:
    d = Doc()
    d.add("From: ", g.name(), " <").pii("email", g.email()).add(">\n")
    d.add("To: ").pii("email", g.email()).add(", ", g.name(), " <").pii("email", g.email()).add(">\n")
    if g.r.random() < 0.5:
        d.add("Cc: ").pii("email", g.email()).add("\n")
    d.add("Return-Path: <").pii("email", g.bounce_email()).add(">\n")
    d.add("Received: from ", g.f.hostname(), " ([").pii("ipv4", g.ipv4()).add("]) by mx.", g.en.domain_name(),
          " with ESMTPS id ", g.rand(12), "\n")
    d.add("Date: ").neg("date", g.date_fmt("%d %b %Y")).add(" ").neg("time", g.time_fmt()).add(" +0000\n")
    d.add(g.pick(["X-Mailer: Microsoft Outlook 16.0 build ", "User-Agent: Mozilla Thunderbird version ",
                  "X-Mailer: Apple Mail (build ", "X-Mailer: PHPMailer ver. "]))
    d.neg("version4", ".".join(str(g.r.randint(0, 255)) for _ in range(4))).add("\n")
    d.add("X-Originating-IP: [").pii("ipv4", g.ipv4()).add("]\n")
    d.add("Subject: ", g.en.sentence(), "\n\n", g.en.paragraph(), "\n")
    return d


def signature(g: Gen) -> Doc:
    d = Doc().add(g.pick(["Best regards,", "Mit freundlichen Grüßen", "Cordialement,", "Met vriendelijke groet,",
                          "Saludos,", "Cordiali saluti,", "Atenciosamente,", "Kind regards,"]), "\n\n")
    d.add(g.name(), "\n", g.f.job(), ", ", g.f.company(), "\n")
    d.add(g.pick(["Tel: ", "Phone: ", "Tel.: ", "T ", "Telefon: ", "Tél. : ", "Telefoon: ", "Tel. "])).pii("phone", g.phone()).add("\n")
    if g.r.random() < 0.6:
        d.add(g.pick(["Mobile: ", "Mob. ", "Handy: ", "Portable : ", "Mobiel: ", "Cell: ", "M: ", "Celular: "])).pii("phone", g.phone()).add("\n")
    d.add(g.pick(["E-mail: ", "Email: ", "mail: ", "E: "])).pii("email", g.email()).add("\n")
    d.add(g.f.street_address(), ", ").neg("postcode", g.f.postcode()).add(" ", g.f.city(), "\n")
    if g.r.random() < 0.5:
        d.add(g.pick(["IBAN: ", "Bank: IBAN ", "IBAN ", "Konto: "])).pii("iban", g.iban()).add("\n")
    return d


def log_lines(g: Gen) -> Doc:
    d = Doc()
    ts = lambda: d.neg("date", g.date_fmt("%Y-%m-%d")).add("T").neg("time", g.time_fmt()).add("Z ")
    ts(); d.add("INFO  auth: login ok user=").pii("email", g.email()).add(" src=").pii("ipv4", g.ipv4()).add(" session=").neg("uuid", g.f.uuid4()).add("\n")
    ts(); d.add(g.pick(["sshd[", "sshd["]), str(g.r.randint(100, 99999)), "]: Accepted publickey for ", g.user(), " from ")
    d.pii(*(("ipv6", g.ipv6()) if g.r.random() < 0.5 else ("ipv4", g.ipv4())))
    d.add(" port ", str(g.r.randint(1024, 65535)), " ssh2\n")
    ts(); d.add("DEBUG http: GET /v1/orders?page=2&", g.pick(["token=", "access_token=", "api_key=", "auth="])).pii("secret", g.token()).add(" 200 ", str(g.r.randint(3, 900)), "ms\n")
    ts(); d.add(g.pick(["WARN  client version ", "WARN  agent version ", "INFO  upgraded to version ", "WARN  plugin==", "INFO  sdk version: "]))
    d.neg("version4", ".".join(str(g.r.randint(0, 255)) for _ in range(4))).add(" is deprecated\n")
    ts(); d.add("ERROR billing: card declined card=").pii("credit_card", g.card()).add(" order=").neg("order_no", g.order_no()).add("\n")
    if g.r.random() < 0.5:
        ts(); d.add("INFO  sms: sent to ").pii("phone", g.phone()).add(" id=").neg("hash", g.f.sha1()[:12]).add("\n")
    if g.r.random() < 0.4:
        ts(); _url_creds(g, d.add("ERROR db: connect failed url=")).add("\n")
    return d


def _url_creds(g: Gen, d: Doc) -> Doc:
    return g.url_credentials(d)


def env_file(g: Gen) -> Doc:
    d = Doc().add(g.pick(["# .env for ", "# production settings: ", "# generated by deploy for ", "# local overrides, "]), g.en.word(), "\n")
    d.add("APP_NAME=", g.en.word(), "\nAPP_VERSION=").neg("version4", ".".join(str(g.r.randint(0, 255)) for _ in range(4))).add("\n")
    _url_creds(g, d.add("DATABASE_URL=")).add("\n")
    d.add(g.pick(["DB_PASSWORD=", "POSTGRES_PASSWORD=", "MYSQL_ROOT_PASSWORD=", "ADMIN_PASS="])).pii("secret", g.password()).add("\n")
    d.add(g.pick(["GITHUB_TOKEN=", "API_KEY=", "STRIPE_SECRET_KEY=", "HF_TOKEN=", "NPM_TOKEN=", "SENDGRID_API_KEY="])).pii("secret", g.token()).add("\n")
    key, value = g.secret_config()
    d.add(key.strip().rstrip(":=").upper().replace(" ", ""), "=").neg("secret_config", value).add("\n")
    d.add(g.pick(["SLACK_WEBHOOK_URL=", "DISCORD_WEBHOOK=", "ALERT_WEBHOOK_URL=", "TEAMS_WEBHOOK="])).pii("secret", g.webhook()).add("\n")
    d.add("SUPPORT_EMAIL=").pii("email", g.email()).add("\nSUPPORT_PHONE=").pii("phone", g.phone()).add("\n")
    key, value = g.placeholder()
    d.add(key).neg("placeholder", value).add("\n")
    return d


def yaml_config(g: Gen) -> Doc:
    d = Doc().add(g.pick(["service:\n  name: ", "app:\n  id: ", "deploy:\n  target: ", "worker:\n  queue: "]), g.en.word(), "\n")
    d.add("  image: registry.", g.en.domain_name(), "/", g.en.word(), ":").neg("version4", ".".join(str(g.r.randint(0, 255)) for _ in range(4))).add("\n")
    d.add("database:\n  host: ").pii("ipv4", g.ipv4()).add("\n  user: ", g.user(), "\n  password: ")
    if g.r.random() < 0.3:
        d.pii("secret", g.passphrase())
    else:
        d.pii("secret", g.password())
    d.add("\n")
    key, value = g.secret_config()
    d.add("  ", key).neg("secret_config", value).add("\n")
    d.add("auth:\n  ", g.pick(["token: ", "api_key: ", "client_secret: ", "access_token: "])).pii("secret", g.token()).add("\n")
    d.add("  ", g.pick(["passphrase: ", "password: ", "secret: ", "pass: "]))
    q = g.r.choice(['"', "'", ""])
    d.add(q).pii("secret", g.passphrase() if q else g.password()).add(q, "\n")
    d.add("notify:\n  email: ").pii("email", g.email()).add("\n  oncall: \"").pii("phone", g.phone()).add("\"\n")
    d.add("  webhook: ").pii("secret", g.webhook()).add("\n  ipv6_bind: \"").pii("ipv6", g.ipv6()).add("\"\n")
    return d


def csv_rows(g: Gen) -> Doc:
    sep = g.pick([",", ";", "\t", ",", "|", ";"])
    d = Doc().add(sep.join(["id", "name", "email", "phone", "card", "iban", "signup", "ip"]), "\n")
    for _ in range(g.r.randint(2, 4)):
        d.add(str(g.r.randint(1, 99999)), sep, g.name().replace(sep, " "), sep).pii("email", g.email()).add(sep)
        d.pii("phone", g.phone()).add(sep).pii("credit_card", g.card()).add(sep).pii("iban", g.iban()).add(sep)
        d.neg("date", g.date()).add(sep).pii("ipv4", g.ipv4()).add("\n")
    return d


def code(g: Gen) -> Doc:
    d = Doc().add(g.pick(['"""Client for the ', '# Sync job for ', '// Uploader for ', '"""Webhook relay for ']), g.en.word(), ".\n")
    d.add("Maintainer: ", g.name(), " <").pii("email", g.email()).add(">\n")
    d.add("__version__ = \"").neg("version4", ".".join(str(g.r.randint(0, 255)) for _ in range(4))).add("\"\n")
    d.add("REQUEST_ID = \"").neg("uuid", g.f.uuid4()).add("\"\n")
    d.add(g.pick(["client = Client(api_key=\"", "API_TOKEN = \"", "headers = {\"Authorization\": \"Bearer ", "stripe.api_key = '"]))
    d.pii("secret", g.token()).add(g.pick(["\")\n", "\"\n", "\"}\n", "'\n"]))
    _url_creds(g, d.add(g.pick(["conn = connect(\"", "engine = create_engine(\"", "BROKER_URL = (\"", "redis_url = (\""]))).add("\")\n")
    d.add("login(user=\"", g.user(), "\", password=\"").pii("secret", g.password().replace('"', "!").replace("\\", "!")).add("\")\n")
    key, value = g.secret_config()
    d.add("cfg.", key.split(":")[0].split("=")[0].strip(), " = \"").neg("secret_config", value).add("\"\n")
    d.add("OID_COMMON_NAME = \"").neg("oid", g.oid()).add("\"  # see RFC ").neg("number", str(g.r.randint(1000, 9999))).add("\n")
    d.add("# Test card: ").pii("credit_card", g.card()).add("\n")
    d.add("PIN_SHA = \"").neg("hash", g.f.sha256()).add("\"\n")
    return d


def json_record(g: Gen) -> Doc:
    d = Doc().add('{"id": "').neg("uuid", g.f.uuid4()).add('", "created": "').neg("date", g.date_fmt("%Y-%m-%d")).add("T")
    d.neg("time", g.time_fmt()).add('", "customer": {"name": "', g.name(), '", "email": "').pii("email", g.email())
    d.add('", "phone": "').pii("phone", g.phone()).add('", "iban": "').pii("iban", g.iban()).add('"}, ')
    d.add('"payment": {"card": "').pii("credit_card", g.card()).add('", "exp": "', f"{g.r.randint(1, 12):02d}/{g.r.randint(25, 31)}", '"}, ')
    d.add('"client_ip": "').pii(*(("ipv4", g.ipv4()) if g.r.random() < 0.7 else ("ipv6", g.ipv6()))).add('", ')
    d.add(g.pick(['"api_token": "', '"password": "', '"secret": "', '"access_key": "']))
    d.pii("secret", g.token() if g.r.random() < 0.5 else g.password().replace('"', "!").replace("\\", "!")).add('", ')
    d.add('"sku": "').neg("order_no", g.order_no()).add('", "isbn": "').neg("isbn", g.isbn()).add('", ')
    key, value = g.secret_config()
    d.add('"', key.split(":")[0].split("=")[0].strip(), '": "').neg("secret_config", value).add('"}\n')
    return d


def git_log(g: Gen) -> Doc:
    d = Doc()
    for _ in range(2):
        d.add("commit ").neg("hash", g.f.sha1()).add("\nAuthor: ", g.name(), " <").pii("email", g.email()).add(">\n")
        d.add("Date:   ").neg("date", g.date_fmt("%a %b %d %Y")).add(" ").neg("time", g.time_fmt()).add("\n\n    ")
        d.add(g.pick(["Bump requests to version ", "Update dependency to v", "Pin library==", "Release ", "Upgrade sdk to version "]))
        d.neg("version4", ".".join(str(g.r.randint(0, 255)) for _ in range(4))).add(" (").neg("hash", g.f.sha1()[:7]).add(")\n\n")
    return d


def forum_post(g: Gen) -> Doc:
    d = Doc().add(g.pick(["Hi all, ", "Hello everyone! ", "Quick question: ", "Update: "]), g.en.sentence(), " ")
    d.add(g.pick(["You can reach me at ", "Mail me at ", "Contact me: ", "Write to "])).pii("email", g.obfuscated_email()).add(" or ")
    d.add(g.pick(["call ", "ring ", "text me on ", "phone "])).pii("phone", g.phone()).add(". ")
    d.add(g.pick(["After upgrading to version ", "Since I installed version ", "With driver version ", "On firmware "]))
    d.neg("version4", ".".join(str(g.r.randint(0, 255)) for _ in range(4))).add(" the sync stops at ").neg("time", g.time_fmt("%H:%M")).add(". ")
    d.add("See pages ").neg("page_range", f"{(a := g.r.randint(10, 900))}-{a + g.r.randint(2, 30)}").add(" of ISBN ").neg("isbn", g.isbn()).add(". ")
    d.add(g.pick(["My order ", "Ticket ", "Order no. ", "Case "])).neg("order_no", g.order_no()).add(" was charged to ")
    d.pii("credit_card", g.card()).add(" twice. ")
    if g.r.random() < 0.5:
        d.add("Oops, I pasted my ", g.pick(["password: ", "password: ", "pwd: ", "passphrase: "])).pii("secret", g.password()).add(" earlier, please delete. ")
    d.add(g.en.sentence(), "\n")
    return d


def invoice(g: Gen) -> Doc:
    d = Doc().add(g.pick(["INVOICE ", "Rechnung Nr. ", "Facture n° ", "Factuur "])).neg("order_no", g.order_no()).add("\n")
    d.add(g.pick(["Date: ", "Datum: ", "Date : ", "Fecha: "])).neg("date", g.date()).add("\n")
    d.add(g.f.company(), "\n", g.f.street_address(), "\n").neg("postcode", g.f.postcode()).add(" ", g.f.city(), "\n")
    d.add(g.pick(["Phone ", "Tel. ", "Tél ", "Telefone: "])).pii("phone", g.phone()).add("\n")
    d.add("Total: ").neg("money", f"{g.r.randint(1, 999)}.{g.r.randint(0, 999):03d},{g.r.randint(0, 99):02d}").add(" EUR\n")
    d.add(g.pick(["Please transfer to IBAN ", "Bankverbindung: ", "Payable to ", "IBAN: "])).pii("iban", g.iban()).add(" (BIC ", g.f.swift(), ")\n")
    d.add(g.pick(["Questions: ", "Contact: ", "Billing: ", "Mail: "])).pii("email", g.email()).add("\n")
    d.add("EAN ").neg("ean", g.f.ean13()).add(", GTIN ").neg("ean", g.f.ean13()).add("\n")
    return d


def prose_negatives(g: Gen) -> Doc:
    """Lines with look-alikes only."""
    d = Doc()
    d.add("As it is written in ").neg("verse", g.pick(["John 3:16", "Psalm 23:1-6", "Gen. 1:1-3", "Matthew 5:3-12", "Isaiah 40:31", "Rom 8:28"]))
    d.add(", printed in ").neg("year", str(g.r.randint(1590, 1700))).add(" (pp. ").neg("page_range", f"{(a := g.r.randint(10, 900))}-{a + g.r.randint(2, 30)}").add("). ")
    d.add("The mail coach left at ").neg("time", g.time_fmt("%H:%M")).add(" on ").neg("date", g.date()).add(". ")
    d.add("Population: ").neg("number", f"{g.r.randint(1, 99)} {g.r.randint(0, 999):03d} {g.r.randint(0, 999):03d}").add(". ")
    d.add("Certificate policy OID ").neg("oid", g.oid()).add(", section ").neg("section", ".".join(str(g.r.randint(1, 12)) for _ in range(4))).add(". ")
    v_prefix, v = g.version4()
    d.add("Requires ", v_prefix).neg("version4", v).add(". ")
    d.add("Device MAC ").neg("mac", g.f.mac_address()).add(", serial ").neg("order_no", g.order_no()).add(". ")
    d.add("Tracking ").neg("tracking", "1Z" + g.rand(6, string.ascii_uppercase + string.digits) + g.rand(10, string.digits)).add(", ")
    d.add("timestamp ").neg("timestamp", str(g.r.randint(1_500_000_000, 1_800_000_000) * g.r.choice([1, 1000]))).add(". ")
    d.add("Icons: ").neg("image", g.en.word() + "@2x.png").add(", follow ").neg("handle", "@" + g.user()).add(", ")
    d.add("npm i ").neg("package", g.en.word() + "@" + f"{g.r.randint(0, 9)}.{g.r.randint(0, 20)}.{g.r.randint(0, 30)}").add(". ")
    d.add("Coordinates ").neg("coordinates", f"{g.f.latitude()}, {g.f.longitude()}").add(", score ").neg("ratio", f"{g.r.randint(0, 9)}:{g.r.randint(0, 9)}").add(". ")
    d.add("Agent: ").neg("user_agent", g.f.user_agent()).add("\n")
    d.add("std::vector and Foo::Bar, ").neg("windows_build", f"10.0.{g.r.randint(10000, 22999)}.{g.r.randint(1, 5000)}").add(", run ")
    d.neg("uuid", g.f.uuid4()).add(", hash ").neg("hash", g.f.md5()).add(".\n")
    key, value = g.secret_config()
    d.add(key).neg("secret_config", value).add("\n")
    key, value = g.placeholder()
    d.add(key).neg("placeholder", value).add("\n")
    d.add("In token of my love, the secret of my heart, and the password: ").neg("word", g.en.word()).add(".\n")
    return d


SETTINGS = [mail_header, signature, log_lines, env_file, yaml_config, csv_rows, code, json_record, git_log,
            forum_post, invoice, prose_negatives]


def build(seed: int, variant: int, docs_per_pair: int) -> list[dict]:
    records = []
    for li, locale in enumerate(LOCALES):
        for si, setting in enumerate(SETTINGS):
            for k in range(docs_per_pair):
                g = Gen(locale, seed * 100_000 + li * 1000 + si * 10 + k, variant)
                d = setting(g)
                records.append({"id": f"{setting.__name__}-{locale}-{k}", "setting": setting.__name__, "locale": locale,
                                "text": d.text, "spans": d.spans, "negatives": d.negatives})
    return records


# -------------------------------------------------------------------- real text

REAL_HEADERS = re.compile(r"^(From|To|Cc|CC|Reply-To|Sender|Return-Path|Received|Errors-To|X-Sender|Delivered-To|"
                          r"Date|X-Mailer|X-Mailman-Version|Content-Type)\b", re.I)
REAL_EMAIL = re.compile(r"[A-Za-z0-9._%+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
REAL_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")


def real_records() -> list[dict]:
    """Header lines (and their folded continuations) of CPython's email test messages.

    Each address and IPv4 address in them is labelled; the hand check found no
    other PII and two kinds of wrong label, fixed below: an SRS bounce address whose
    local part holds a '/', and SMTP queue ids in `id <...@host>` (address-shaped,
    not a mailbox: "ignore", counted neither way). Message ids, MIME boundaries such as
    "192.168.1.2.889.32614.987812255.500.21814" and version strings are left out
    of the PII on purpose: they are the look-alikes here).
    """
    folder = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    records = []
    for path in sorted(folder.glob("msg_*.txt")):
        lines, keep = [], False
        for line in path.read_text(encoding="latin-1").splitlines():
            if not line.strip():
                break  # end of the header block
            if line[0] in " \t":
                if keep:
                    lines.append(line)
                continue
            keep = bool(REAL_HEADERS.match(line))
            if keep:
                lines.append(line)
        text = "\n".join(lines)
        if not text:
            continue
        spans, ignore = [], []
        for m in REAL_EMAIL.finditer(text):
            start = m.start()
            while start > 0 and text[start - 1] not in " \t\n<(":  # "SRS0=aO/p=ON=...@": the whole address
                start -= 1
            if text[max(0, start - 4):start] == "id <":  # an SMTP queue id, not a mailbox: counted neither way
                ignore.append([start, m.end(), "smtp_id"])
            else:
                spans.append([start, m.end(), "email"])
        spans += [[m.start(), m.end(), "ipv4"] for m in REAL_IPV4.finditer(text)
                  if all(int(p) <= 255 for p in m.group().split("."))]
        records.append({"id": f"cpython-test_email-{path.stem}", "setting": "real_mail_header", "locale": "en",
                        "text": text, "spans": sorted(spans), "negatives": [], "ignore": ignore})
    return records


def main() -> None:
    # "fresh" was generated once, after the scrubber's changes were done, and scored once.
    for name, seed, variant in (("dev", 1, 0), ("heldout", 2, 1), ("fresh", 3, 1)):
        records = build(seed, variant, docs_per_pair=1)
        write(OUT / f"{name}.jsonl", records)
    write(OUT / "real.jsonl", real_records())


def write(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    spans = sum(len(r["spans"]) for r in records)
    negatives = sum(len(r["negatives"]) for r in records)
    print(f"{path.name}: {len(records)} documents, {spans} PII spans, {negatives} look-alikes", file=sys.stderr)


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":  # some faker providers draw from sets: fix their order
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    main()
