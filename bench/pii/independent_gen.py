"""Independent PII evaluation set generator.

Each document is built from segments: plain text, positive spans (kind, pattern tag) and hard
negative spans (pattern tag). Offsets are exact by construction. Output: data.jsonl

Written by a separate evaluator who never saw the scrubber's code (issue 12), and kept here
as it was written except for this paragraph and the default output path. bench/pii.py scores
the draw in independent.jsonl, made by (faker is not in requirements.txt):

    pip install faker==40.54.0
    PYTHONHASHSEED=0 python bench/pii/independent_gen.py 2025 bench/pii/independent.jsonl

Values come from Faker (MIT licence) in ten locales; tokens and numbers are random.
"""
import json, random, string, uuid, hashlib
from faker import Faker

import sys
SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 20240611
R = random.Random(SEED)
LOCALES = ['en_US', 'en_GB', 'de_DE', 'fr_FR', 'nl_NL', 'es_ES', 'it_IT', 'ja_JP', 'pt_BR', 'en_IN']
FK = {l: Faker(l) for l in LOCALES}
for i, f in enumerate(FK.values()):
    f.seed_instance(SEED + i)
FEN = FK['en_US']


class Doc:
    def __init__(self, setting, locale):
        self.parts, self.pos, self.neg, self.setting, self.locale = [], [], [], setting, locale
        self.n = 0
        self.aux, self.ign = [], []

    def a(self, val, tag):
        self.aux.append(dict(start=self.n, end=self.n + len(val), tag=tag, text=val)); return self.t(val)

    def i(self, val, tag):
        self.ign.append(dict(start=self.n, end=self.n + len(val), tag=tag, text=val)); return self.t(val)

    def t(self, s):
        self.parts.append(s); self.n += len(s); return self

    def p(self, kind, val, tag):
        self.pos.append(dict(kind=kind, start=self.n, end=self.n + len(val), tag=tag, text=val))
        return self.t(val)

    def x(self, val, tag):
        self.neg.append(dict(start=self.n, end=self.n + len(val), tag=tag, text=val))
        return self.t(val)

    def out(self):
        return dict(text=''.join(self.parts), setting=self.setting, locale=self.locale, pos=self.pos, neg=self.neg, aux=self.aux, ign=self.ign)


def d(n):
    return ''.join(R.choice(string.digits) for _ in range(n))


def nz(n):
    return R.choice('23456789') + d(n - 1)


def rs(n, alpha=string.ascii_letters + string.digits):
    return ''.join(R.choice(alpha) for _ in range(n))


# ----------------------------------------------------------------------------------------- phones
US_AC = '201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 234 239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 334 336 337 339 347 351 352 360 361 386 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 424 425 432 434 435 440 443 469 478 479 480 484 501 502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 551 559 561 562 563 567 570 571 573 574 580 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 620 623 626 630 631 636 641 646 650 651 660 661 662 678 682 701 702 703 704 706 707 708 712 713 714 715 716 717 718 719 720 724 727 731 732 734 740 754 757 760 763 765 770 772 773 774 775 781 785 786 801 802 803 804 805 806 808 810 812 813 814 815 816 817 818 828 830 831 832 843 845 847 848 850 856 857 858 859 860 862 863 864 865 870 872 878 901 903 904 906 907 908 909 910 912 913 914 915 916 917 918 919 920 925 928 931 936 937 940 941 947 949 952 954 956 970 971 972 973 978 979 980 985 989'.split()


def ph_us():
    a, e, s = R.choice(US_AC), nz(3), d(4)
    while e[1:] == '11':
        e = nz(3)
    fmts = [
        (f'({a}) {e}-{s}', 'US-paren'), (f'{a}-{e}-{s}', 'US-dash'), (f'{a}.{e}.{s}', 'US-dots'),
        (f'{a}{e}{s}', 'US-unbroken'), (f'+1 {a} {e} {s}', 'US-intl'), (f'+1-{a}-{e}-{s}', 'US-intl'),
        (f'1-{a}-{e}-{s}', 'US-1dash'), (f'{a} {e} {s}', 'US-spaces'), (f'+1{a}{e}{s}', 'US-e164'),
    ]
    return R.choice(fmts)


def ph_us_ext():
    a, e, s = R.choice(US_AC), nz(3), d(4)
    ext = R.choice([' x', ' ext. ', ' ext ', ' Ext. ', ' x.', ', ext. ', ' #']) + d(R.choice([2, 3, 4]))
    num = R.choice([f'{a}.{e}.{s}', f'({a}) {e}-{s}', f'{a}-{e}-{s}', f'{a}{e}{s}'])
    return num, ext, 'US-ext'


def ph_uk():
    f = [
        (lambda: f'020 {nz(4)} {d(4)}', 'UK-national-london'),
        (lambda: f'07{R.choice("4579")}{d(2)} {d(6)}', 'UK-national-mobile'),
        (lambda: f'0161 {nz(3)} {d(4)}', 'UK-national-area'),
        (lambda: f'01{R.choice("23456789")}{d(2)} {d(6)}', 'UK-national-area'),
        (lambda: f'(020) {nz(4)} {d(4)}', 'UK-national-paren'),
        (lambda: f'+44 (0)20 {nz(4)} {d(4)}', 'UK-intl-(0)'),
        (lambda: f'+44 7{R.choice("4579")}{d(2)} {d(6)}', 'UK-intl'),
        (lambda: f'+447{R.choice("4579")}{d(8)}', 'UK-e164'),
        (lambda: f'07{R.choice("4579")}{d(8)}', 'UK-national-unbroken'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_de():
    f = [
        (lambda: f'030 {nz(8)}', 'DE-national'), (lambda: f'030/{nz(7)}', 'DE-national-slash'),
        (lambda: f'0{R.choice(["151", "160", "171", "172", "176"])} {d(7)}', 'DE-national-mobile'),
        (lambda: f'089 {nz(3)} {d(3)} {d(2)}', 'DE-national-grouped'),
        (lambda: f'(0221) {nz(7)}', 'DE-national-paren'), (lambda: f'040-{nz(8)}', 'DE-national-dash'),
        (lambda: f'0{R.choice(["6221", "7531", "3641"])} {nz(5)}', 'DE-national'),
        (lambda: f'+49 30 {nz(8)}', 'DE-intl'), (lambda: f'+49 (0)30 {nz(4)} {d(4)}', 'DE-intl-(0)'),
        (lambda: f'+49 171 {d(7)}', 'DE-intl'), (lambda: f'0049 89 {nz(7)}', 'DE-0049'),
        (lambda: f'0171/{d(7)}', 'DE-national-slash'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_fr():
    f = [
        (lambda: f'06 {d(2)} {d(2)} {d(2)} {d(2)}', 'FR-national'), (lambda: f'07 {d(2)} {d(2)} {d(2)} {d(2)}', 'FR-national'),
        (lambda: f'01 {d(2)} {d(2)} {d(2)} {d(2)}', 'FR-national'), (lambda: f'06.{d(2)}.{d(2)}.{d(2)}.{d(2)}', 'FR-national-dots'),
        (lambda: f'04{d(8)}', 'FR-national-unbroken'), (lambda: f'+33 6 {d(2)} {d(2)} {d(2)} {d(2)}', 'FR-intl'),
        (lambda: f'+33 (0)1 {d(2)} {d(2)} {d(2)} {d(2)}', 'FR-intl-(0)'), (lambda: f'+33612{d(6)}', 'FR-e164'),
        (lambda: f'06-{d(2)}-{d(2)}-{d(2)}-{d(2)}', 'FR-national-dash'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_nl():
    f = [
        (lambda: f'06-{nz(8)}', 'NL-national-mobile'), (lambda: f'06 {nz(8)}', 'NL-national-mobile'),
        (lambda: f'020-{nz(7)}', 'NL-national'), (lambda: f'020 {nz(3)} {d(4)}', 'NL-national'),
        (lambda: f'010 - {nz(3)} {d(2)} {d(2)}', 'NL-national'), (lambda: f'0{R.choice(["30", "70", "40"])}-{nz(7)}', 'NL-national'),
        (lambda: f'+31 6 {nz(8)}', 'NL-intl'), (lambda: f'+31 (0)20 {nz(3)} {d(4)}', 'NL-intl-(0)'),
        (lambda: f'06 {nz(2)} {d(2)} {d(2)} {d(2)}', 'NL-national-mobile'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_es():
    f = [
        (lambda: f'6{d(2)} {d(3)} {d(3)}', 'ES-national-mobile'), (lambda: f'91 {d(3)} {d(2)} {d(2)}', 'ES-national'),
        (lambda: f'93 {nz(3)} {d(2)} {d(2)}', 'ES-national'), (lambda: f'9{R.choice(["1", "3", "4", "5", "6", "7", "8"])}{d(1)} {nz(3)} {d(3)}', 'ES-national'),
        (lambda: f'6{d(8)}', 'ES-national-unbroken'), (lambda: f'+34 6{d(2)} {d(2)} {d(2)} {d(2)}', 'ES-intl'),
        (lambda: f'+34 91 {d(3)} {d(2)} {d(2)}', 'ES-intl'), (lambda: f'(+34) 6{d(2)} {d(3)} {d(3)}', 'ES-intl-paren'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_it():
    def itm():
        return R.choice(['320', '328', '329', '330', '333', '334', '335', '338', '339', '340', '345', '347', '348', '349', '350', '351', '360', '366', '368', '380', '388', '389', '391', '392', '393'])
    f = [
        (lambda: f'{itm()} {d(3)} {d(4)}', 'IT-national-mobile'), (lambda: f'{itm()} {d(7)}', 'IT-national-mobile'),
        (lambda: f'06 {d(4)} {d(4)}', 'IT-national'), (lambda: f'02 {d(7)}', 'IT-national'), (lambda: f'02-{d(8)}', 'IT-national'),
        (lambda: f'055 {d(6)}', 'IT-national'), (lambda: f'+39 {itm()} {d(3)} {d(4)}', 'IT-intl'),
        (lambda: f'+39 06 {d(4)} {d(4)}', 'IT-intl'), (lambda: f'{itm()}{d(7)}', 'IT-national-unbroken'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_jp():
    f = [
        (lambda: f'090-{d(4)}-{d(4)}', 'JP-national-mobile'), (lambda: f'080-{d(4)}-{d(4)}', 'JP-national-mobile'),
        (lambda: f'03-{nz(4)}-{d(4)}', 'JP-national'), (lambda: f'06-{nz(4)}-{d(4)}', 'JP-national'),
        (lambda: f'045-{nz(3)}-{d(4)}', 'JP-national'), (lambda: f'0120-{d(3)}-{d(3)}', 'JP-freedial'),
        (lambda: f'03({nz(4)}){d(4)}', 'JP-national-paren'), (lambda: f'090{d(8)}', 'JP-national-unbroken'),
        (lambda: f'+81 90-{d(4)}-{d(4)}', 'JP-intl'), (lambda: f'+81 3 {nz(4)} {d(4)}', 'JP-intl'),
        (lambda: f'０９０－{"".join(chr(0xFF10 + int(c)) for c in d(4))}－{"".join(chr(0xFF10 + int(c)) for c in d(4))}', 'JP-fullwidth'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_br():
    ddd = R.choice(['11', '21', '31', '41', '51', '61', '71', '81', '85'])
    f = [
        (lambda: f'({ddd}) 9{R.choice("6789")}{d(3)}-{d(4)}', 'BR-national-mobile'), (lambda: f'({ddd}) {R.choice("2345")}{d(3)}-{d(4)}', 'BR-national'),
        (lambda: f'{ddd} 9{R.choice("6789")}{d(3)}-{d(4)}', 'BR-national-mobile'), (lambda: f'({ddd}) 9 {R.choice("6789")}{d(3)}-{d(4)}', 'BR-national-mobile'),
        (lambda: f'+55 {ddd} 9{R.choice("6789")}{d(3)}-{d(4)}', 'BR-intl'), (lambda: f'+55 ({ddd}) 9{R.choice("6789")}{d(3)}-{d(4)}', 'BR-intl'),
        (lambda: f'{ddd}9{R.choice("6789")}{d(7)}', 'BR-national-unbroken'), (lambda: f'0{ddd} 9{R.choice("6789")}{d(3)}-{d(4)}', 'BR-national-0'),
    ]
    g, tag = R.choice(f); return g(), tag


def ph_in():
    m = R.choice("6789") + d(4)
    f = [
        (lambda: f'{m} {d(5)}', 'IN-national-mobile'), (lambda: f'0{m} {d(5)}', 'IN-national-0'),
        (lambda: f'{m}{d(5)}', 'IN-national-unbroken'), (lambda: f'+91 {m} {d(5)}', 'IN-intl'),
        (lambda: f'+91-{m}{d(5)}', 'IN-intl'), (lambda: f'022 {nz(4)} {d(4)}', 'IN-national-landline'),
        (lambda: f'011-{nz(8)}', 'IN-national-landline'), (lambda: f'080-{nz(4)}-{d(4)}', 'IN-national-landline'),
        (lambda: f'+91 80 {nz(4)} {d(4)}', 'IN-intl'),
    ]
    g, tag = R.choice(f); return g(), tag


PHONE = {'en_US': ph_us, 'en_GB': ph_uk, 'de_DE': ph_de, 'fr_FR': ph_fr, 'nl_NL': ph_nl, 'es_ES': ph_es,
         'it_IT': ph_it, 'ja_JP': ph_jp, 'pt_BR': ph_br, 'en_IN': ph_in}
TEL_LABEL = {'en_US': ['Phone: ', 'Tel: ', 'Cell: ', 'Mobile: ', 'Direct: ', 'P: ', 'call '],
             'en_GB': ['Tel: ', 'Mob: ', 'Mobile: ', 'T: ', 'Phone '], 'de_DE': ['Tel.: ', 'Telefon: ', 'Mobil: ', 'Fon ', 'Tel. '],
             'fr_FR': ['Tél. : ', 'Tél : ', 'Portable : ', 'Tel. '], 'nl_NL': ['Tel: ', 'Telefoon: ', 'Mob.: ', 'T '],
             'es_ES': ['Tel.: ', 'Teléfono: ', 'Móvil: ', 'Tlf. '], 'it_IT': ['Tel. ', 'Cell. ', 'Telefono: ', 'tel: '],
             'ja_JP': ['TEL: ', '電話: ', '携帯: ', 'Tel '], 'pt_BR': ['Tel: ', 'Celular: ', 'WhatsApp: ', 'Fone: '],
             'en_IN': ['Mob: ', 'Mobile: ', 'Ph: ', 'Contact: ']}


def phone(loc):
    return PHONE[loc]()


# ----------------------------------------------------------------------------------------- ibans
def iban_check(cc, bban):
    s = ''.join(str(int(c, 36)) for c in (bban + cc + '00').upper())
    return f'{cc}{98 - int(s) % 97:02d}{bban}'


IBAN_LOC = {'de_DE': 'DE', 'fr_FR': 'FR', 'nl_NL': 'NL', 'es_ES': 'ES', 'it_IT': 'IT', 'en_GB': 'GB', 'pt_BR': 'BR'}


def iban(loc):
    f = FK[loc] if loc in IBAN_LOC else FK[R.choice(list(IBAN_LOC))]
    raw = f.iban()
    raw = iban_check(raw[:2], raw[4:])
    style = R.choice(['compact', 'spaced', 'spaced', 'lower', 'lower-spaced'])
    if 'spaced' in style:
        raw = ' '.join(raw[i:i + 4] for i in range(0, len(raw), 4))
    if 'lower' in style:
        raw = raw.lower()
    return raw, f'IBAN-{raw[:2].upper()}-{style}'


# ----------------------------------------------------------------------------------------- cards
def luhn_ok(num):
    ds = [int(c) for c in num if c.isdigit()][::-1]
    return sum(x if i % 2 == 0 else (x * 2 - 9 if x * 2 > 9 else x * 2) for i, x in enumerate(ds)) % 10 == 0


def card():
    typ = R.choice(['visa16', 'visa16', 'mastercard', 'mastercard', 'amex', 'discover', 'jcb', 'maestro'])
    if typ == 'maestro':
        body = R.choice(['5018', '5020', '5038', '5893', '6304', '6759', '6761', '6763']) + d(R.choice([16, 16, 19]) - 5)
        num = next(body + c for c in string.digits if luhn_ok(body + c))
    else:
        num = FEN.credit_card_number(card_type=typ)
    assert luhn_ok(num), num
    style = R.choice(['plain', 'spaced', 'dashed'])
    if style != 'plain':
        sep = ' ' if style == 'spaced' else '-'
        if len(num) == 15:
            num = sep.join([num[:4], num[4:10], num[10:]])
        else:
            num = sep.join(num[i:i + 4] for i in range(0, len(num), 4)) if len(num) == 16 else (sep.join(num[i:i + 4] for i in range(0, 16, 4)) + sep + num[16:])
    return num, f'card-{typ}-{style}'


# ----------------------------------------------------------------------------------------- ips
def ipv4():
    while True:
        a = R.choice([R.randint(1, 223), R.choice([81, 185, 203, 198, 34, 52, 91, 176, 45, 66, 104, 151, 212])])
        if a in (10, 127, 0) or a >= 224:
            continue
        ip = f'{a}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}'
        if ip.startswith('192.168') or ip.startswith('172.') or ip.startswith('169.254'):
            continue
        return ip


def ipv6():
    groups = [f'{R.randint(0, 0xffff):x}' for _ in range(8)]
    groups[0] = R.choice(['2001', '2a02', '2600', '2a01', '2406', '2c0f', '2001'])
    style = R.choice(['full', 'compressed', 'compressed', 'compressed', 'mapped', 'upper', 'padded'])
    if style == 'full':
        return ':'.join(groups), 'ipv6-full'
    if style == 'padded':
        return ':'.join(g.zfill(4) for g in groups), 'ipv6-padded'
    if style == 'mapped':
        return f'::ffff:{ipv4()}', 'ipv6-v4mapped'
    k = R.randint(2, 5)
    s = ':'.join(groups[:R.randint(2, 4)]) + '::' + ':'.join(groups[8 - R.randint(1, 3):])
    if style == 'upper':
        s = s.upper()
    return s, f'ipv6-{style}'


# ----------------------------------------------------------------------------------------- emails
ROMAN_FIRST = ['taro', 'yuki', 'hiroshi', 'priya', 'rahul', 'anika', 'lucas', 'joao', 'giulia', 'marco', 'sophie',
               'jan', 'pieter', 'lena', 'maximilian', 'camille', 'olivier', 'lucia', 'javier', 'emma', 'oliver', 'aarav']
ROMAN_LAST = ['tanaka', 'suzuki', 'sharma', 'patel', 'silva', 'souza', 'rossi', 'bianchi', 'dubois', 'martin', 'devries',
              'jansen', 'mueller', 'schmidt', 'garcia', 'lopez', 'smith', 'jones', 'iyer', 'nakamura', 'ferreira']
DOMAINS = {'en_US': ['gmail.com', 'outlook.com', 'acme-corp.com', 'yahoo.com', 'fastmail.fm'],
           'en_GB': ['btinternet.com', 'example.co.uk', 'nhs.net', 'outlook.co.uk'],
           'de_DE': ['web.de', 'gmx.de', 't-online.de', 'firma-gmbh.de', 'posteo.de'],
           'fr_FR': ['orange.fr', 'free.fr', 'laposte.net', 'societe.fr'],
           'nl_NL': ['ziggo.nl', 'kpnmail.nl', 'bedrijf.nl', 'xs4all.nl'],
           'es_ES': ['telefonica.es', 'hotmail.es', 'empresa.es'], 'it_IT': ['libero.it', 'tiscali.it', 'azienda.it'],
           'ja_JP': ['docomo.ne.jp', 'yahoo.co.jp', 'example.co.jp', 'ezweb.ne.jp'],
           'pt_BR': ['uol.com.br', 'bol.com.br', 'empresa.com.br', 'gmail.com'],
           'en_IN': ['rediffmail.com', 'gmail.com', 'infosys.co.in', 'tcs.com']}


def local_part():
    fn, ln = R.choice(ROMAN_FIRST), R.choice(ROMAN_LAST)
    return R.choice([f'{fn}.{ln}', f'{fn[0]}{ln}', f'{fn}_{ln}{d(2)}', f'{fn}{R.randint(1, 99)}', f'{ln}.{fn}',
                     f'{fn}+{R.choice(["news", "shop", "github"])}', f'{fn}-{ln}', f'{fn.capitalize()}.{ln.capitalize()}'])


def email(loc):
    if R.random() < 0.3:
        e = FK[loc].email() if loc != 'ja_JP' else local_part() + '@' + R.choice(DOMAINS[loc])
        return e, 'email-plain'
    return local_part() + '@' + R.choice(DOMAINS[loc]), 'email-plain'


def email_obf(loc):
    lp = local_part().replace('+', '')
    dom = R.choice(DOMAINS[loc])
    dl, tld = dom.rsplit('.', 1)
    style = R.randint(0, 7)
    if style == 0:
        return f'{lp} at {dl} dot {tld}', 'email-obf-at-dot'
    if style == 1:
        return f'{lp}(at){dom}', 'email-obf-(at)'
    if style == 2:
        return f'{lp} [at] {dl} [dot] {tld}', 'email-obf-[at][dot]'
    if style == 3:
        return f'{lp} AT {dl} DOT {tld}', 'email-obf-AT-DOT'
    if style == 4:
        return f'{lp}[at]{dom}', 'email-obf-[at]'
    if style == 5:
        return f'{lp} (at) {dl} (dot) {tld}', 'email-obf-(at)(dot)'
    if style == 6:
        return f'{lp}@{dl} dot {tld}', 'email-obf-@-dot'
    return f'{lp} {{at}} {dom}', 'email-obf-{at}'


def email_bounce(loc):
    lp, dom = local_part().replace('+', ''), R.choice(DOMAINS[loc])
    style = R.randint(0, 3)
    if style == 0:
        return f'bounce-mc.us{R.randint(1, 20)}_{d(8)}.{d(6)}-{lp}={dom}@mail{R.randint(1, 200)}.suw{R.randint(10, 99)}.mcdlv.net', 'email-bounce-mc'
    if style == 1:
        return f'msprvs1=19{d(3)}{rs(6).lower()}=bounces-{d(5)}-{lp}={dom}@bounce.{R.choice(["sendgrid.net", "mailgun.org"])}', 'email-bounce-prvs'
    if style == 2:
        return f'SRS0=ab{rs(2)}={rs(2)}={dom}={lp}@forwarder.example.net', 'email-bounce-SRS'
    return f'{rs(12).lower()}-{lp}={dom}@bounces.amazonses.com', 'email-bounce-ses'


# ----------------------------------------------------------------------------------------- secrets
A62 = string.ascii_letters + string.digits


def token():
    k = R.randint(0, 17)
    if k == 0: return 'ghp_' + rs(36), 'tok-github-ghp'
    if k == 1: return 'github_pat_11' + rs(20, string.ascii_uppercase + string.digits) + '_' + rs(59), 'tok-github-pat'
    if k == 2: return 'glpat-' + rs(20, A62 + '-_'), 'tok-gitlab'
    if k == 3: return f'xoxb-{d(12)}-{d(13)}-{rs(24)}', 'tok-slack-bot'
    if k == 4: return f'xoxp-{d(12)}-{d(12)}-{d(13)}-{rs(32, "0123456789abcdef")}', 'tok-slack-user'
    if k == 5: return 'sk_live_' + rs(R.choice([24, 99])), 'tok-stripe-sk'
    if k == 6: return 'rk_live_' + rs(24), 'tok-stripe-rk'
    if k == 7: return 'AKIA' + rs(16, string.ascii_uppercase + '234567'), 'tok-aws-akid'
    if k == 8: return 'AIza' + rs(35, A62 + '-_'), 'tok-google-api'
    if k == 9: return 'sk-proj-' + rs(48, A62 + '-_') + 'T3BlbkFJ' + rs(48, A62 + '-_'), 'tok-openai-proj'
    if k == 10: return 'sk-' + rs(20) + 'T3BlbkFJ' + rs(20), 'tok-openai-legacy'
    if k == 11: return 'hf_' + rs(34, string.ascii_letters), 'tok-huggingface'
    if k == 12: return 'npm_' + rs(36), 'tok-npm'
    if k == 13: return f'SG.{rs(22, A62 + "-_")}.{rs(43, A62 + "-_")}', 'tok-sendgrid'
    if k == 14: return 'SK' + rs(32, '0123456789abcdef'), 'tok-twilio-sk'
    if k == 15: return 'ya29.' + rs(60, A62 + '-_'), 'tok-google-oauth'
    if k == 16: return 'glrt-' + rs(20, A62 + '-_'), 'tok-gitlab-runner'
    return 'sk-ant-api03-' + rs(93, A62 + '-_') + 'AA', 'tok-anthropic'


def jwt():
    import base64
    b = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip('=')
    return b({'alg': 'HS256', 'typ': 'JWT'}) + '.' + b({'sub': d(8), 'name': R.choice(ROMAN_FIRST), 'iat': int('17' + d(8))}) + '.' + rs(43, A62 + '-_')


WORDS = ['sunflower', 'meadow', 'river', 'copper', 'lantern', 'violet', 'harbor', 'falcon', 'thunder', 'marble',
         'orchid', 'velvet', 'glacier', 'pepper', 'saffron', 'tundra', 'walnut', 'ember', 'quartz', 'willow']


def password():
    k = R.randint(0, 7)
    if k == 0: return '-'.join(R.sample(WORDS, 4)), 'pw-passphrase-dash'
    if k == 1: return ''.join(w.capitalize() for w in R.sample(WORDS, 3)), 'pw-passphrase-camel'
    if k == 2: return ''.join(R.sample(WORDS, 2)), 'pw-nodigits-lower'
    if k == 3: return rs(4) + R.choice('!#$%&*') + rs(3) + R.choice('!?@^~') + rs(4), 'pw-punct'
    if k == 4: return R.choice(WORDS).capitalize() + R.choice(['!', '#', '$']) + d(4) + R.choice(['?', '%', '&']), 'pw-punct'
    if k == 5: return rs(24, A62 + '+/'), 'pw-random'
    if k == 6: return R.choice(WORDS) + '.' + R.choice(WORDS) + '.' + R.choice(WORDS), 'pw-passphrase-dots'
    return rs(12, A62 + '!@#$%^&*()_+=-'), 'pw-punct-heavy'


def url_cred():
    user = R.choice(['admin', 'deploy', 'app_user', 'postgres', 'svc-backup', 'jenkins', 'root', 'gituser'])
    pw, _ = R.choice([password, password, lambda: (rs(16), 'x'), lambda: (rs(8) + '%40' + rs(5), 'x')])()
    pw = pw.replace('@', '%40').replace('/', '%2F').replace('#', '%23').replace('?', '%3F').replace(':', '%3A')
    host = R.choice(['db.internal.example.com', 'redis.prod.local', 'github.com', 'gitlab.example.org', 'mq.example.net',
                     'mongo-0.cluster.example.com', 'ftp.example.de', 'registry.example.io'])
    scheme, tail = R.choice([('postgres', ':5432/orders'), ('postgresql', '/app'), ('mysql', ':3306/shop'), ('redis', ':6379/0'),
                             ('https', '/acme/infra.git'), ('amqp', ':5672/%2F'), ('mongodb+srv', '/?retryWrites=true'),
                             ('ftp', '/pub/'), ('https', '/v2/')])
    return f'{scheme}://{user}:', pw, f'@{host}{tail}', f'urlcred-{scheme}'


def webhook():
    k = R.randint(0, 4)
    if k == 0: return 'https://hooks.slack.com/services/', f'T{rs(8, string.ascii_uppercase + string.digits)}/B{rs(10, string.ascii_uppercase + string.digits)}/{rs(24)}', '', 'webhook-slack'
    if k == 1: return f'https://discord.com/api/webhooks/{d(18)}/', rs(68, A62 + '-_'), '', 'webhook-discord'
    if k == 2: return f'https://{R.choice(["acme", "contoso"])}.webhook.office.com/webhookb2/{uuid.UUID(int=R.getrandbits(128))}@{uuid.UUID(int=R.getrandbits(128))}/IncomingWebhook/', rs(32, '0123456789abcdef') + '/' + str(uuid.UUID(int=R.getrandbits(128))), '', 'webhook-teams'
    if k == 3: return 'https://api.telegram.org/bot', f'{d(10)}:{rs(35, A62 + "-_")}', '/sendMessage', 'webhook-telegram'
    return 'https://chat.googleapis.com/v1/spaces/AAAA' + rs(7) + '/messages?key=', 'AIza' + rs(35, A62 + '-_') + '&token=' + rs(43, A62 + '-_') + '%3D', '', 'webhook-gchat'


# ----------------------------------------------------------------------------------------- negatives
def hexs(n):
    return rs(n, '0123456789abcdef')


def neg_item():
    """returns (prefix, value, suffix, tag)"""
    k = R.randint(0, 61)
    v4 = f'{R.randint(1, 20)}.{R.randint(0, 12)}.{R.randint(0, 99)}.{R.randint(100, 30000)}'
    ver4 = f'{R.randint(1, 99)}.{R.randint(0, 20)}.{R.randint(0, 255)}.{R.randint(0, 255)}'
    opts = [
        ('Upgraded the agent to version ', ver4, ' last night.', 'neg-version-4part'),
        ('pip install internal-lib==', f'{R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 20)}.{R.randint(1, 400)}', '', 'neg-version-pin'),
        ('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/', f'{R.randint(100, 126)}.0.{R.randint(4000, 6500)}.{R.randint(10, 200)}', ' Safari/537.36', 'neg-useragent-version'),
        ('FileVersion: ', f'10.0.{R.randint(17000, 22631)}.{R.randint(1, 4000)}', '', 'neg-version-4part'),
        ('Running build v', ver4, ' (commit ' + hexs(7) + ')', 'neg-version-4part'),
        ('Firmware ', ver4, ' is available for your router.', 'neg-version-4part'),
        ('snmpget -v2c -c public host ', f'1.3.6.1.{R.randint(2, 4)}.1.{R.randint(1, 40000)}.{R.randint(1, 20)}.{R.randint(1, 9)}', '', 'neg-oid'),
        ('Signature algorithm OID ', R.choice(['1.2.840.113549.1.1.11', '1.2.840.10045.4.3.2', '2.16.840.1.101.3.4.2.1', '1.3.6.1.5.5.7.3.1', '2.5.4.3']), '', 'neg-oid'),
        ('Created: ', f'{R.randint(2015, 2025)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d} {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}', '', 'neg-datetime'),
        ('Datum: ', f'{R.randint(1, 28):02d}.{R.randint(1, 12):02d}.{R.randint(2000, 2025)}', '', 'neg-date-de'),
        ('Due on ', f'{R.randint(1, 12):02d}/{R.randint(1, 28):02d}/{R.randint(2000, 2025)}', '', 'neg-date-us'),
        ('', f'{R.randint(2015, 2025)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}.{d(6)}Z', ' job finished', 'neg-iso-timestamp'),
        ('ts=', '17' + d(8), ' level=info', 'neg-epoch'),
        ('"createdAt": ', '17' + d(11), ',', 'neg-epoch-ms'),
        ('ISBN ', R.choice(['978-3-16-148410-0', '978-0-306-40615-7', '0-306-40615-2', '978-1-4028-9462-6', '978-4-06-519981-1', '978-85-359-0277-5']), '', 'neg-isbn'),
        ('ISBN: ', '978' + d(10), '', 'neg-isbn-compact'),
        ('Order #', f'{d(3)}-{d(7)}-{d(7)}', ' has shipped', 'neg-order-amazon'),
        ('Invoice ', f'INV-{R.randint(2019, 2025)}-{d(6)}', '', 'neg-invoice'),
        ('Rechnungsnummer: ', f'{R.randint(2019, 2025)}{d(6)}', '', 'neg-invoice-number'),
        ('Tracking number: ', f'1Z{rs(6, string.ascii_uppercase + string.digits)}{d(10)}', '', 'neg-tracking-ups'),
        ('USPS tracking ', f'9400 {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}', '', 'neg-tracking-usps'),
        ('FedEx tracking #', d(12), '', 'neg-tracking-fedex'),
        ('request_id=', str(uuid.UUID(int=R.getrandbits(128))), '', 'neg-uuid'),
        ('commit ', hexs(40), '', 'neg-git-sha'),
        ('Merge ', hexs(7), ' into main', 'neg-git-short'),
        ('color: ', '#' + hexs(6), ';', 'neg-hexcolor'),
        ('Location: ', f'{R.uniform(-60, 60):.6f}, {R.uniform(-150, 150):.6f}', '', 'neg-coords'),
        ('Total: ', f'${R.randint(1, 999)},{d(3)},{d(3)}.{d(2)}', '', 'neg-money-us'),
        ('Gesamtbetrag: ', f'{R.randint(1, 999)}.{d(3)}.{d(3)},{d(2)} €', '', 'neg-money-de'),
        ('Montant : ', f'{R.randint(1, 999)} {d(3)} {d(3)},{d(2)} €', '', 'neg-money-fr'),
        ('Valor: ', f'R$ {R.randint(1, 99)}.{d(3)},{d(2)}', '', 'neg-money-br'),
        ('Amount: ', f'₹{R.randint(1, 99)},{d(2)},{d(3)}.00', '', 'neg-money-in'),
        ('合計金額: ', f'¥{R.randint(1, 999)},{d(3)}', '', 'neg-money-jp'),
        ('Resolution ', f'{R.choice([1920, 2560, 3840])}x{R.choice([1080, 1440, 2160])}', ', 60 Hz', 'neg-measure'),
        ('Dimensions: ', f'{R.randint(10, 99)}.{R.randint(0, 9)} x {R.randint(10, 99)}.{R.randint(0, 9)} x {R.randint(1, 9)}.{R.randint(0, 9)} cm', '', 'neg-measure'),
        ('result = ', f'{R.randint(100, 999)} * {R.randint(1000, 9999)} - {R.randint(10000, 99999)}', '', 'neg-math'),
        ('pi ≈ ', '3.14159265358979', '', 'neg-math'),
        ('server listening on localhost:', str(R.choice([8080, 5432, 6379, 3000, 8443, 27017])), '', 'neg-port'),
        ('As it says in ', R.choice(['John 3:16', 'Genesis 1:1-3', 'Psalm 23:1–6', 'Romans 8:28', '1 Corinthians 13:4-7', 'Matthew 5:3-12']), '.', 'neg-verse'),
        ('See ', f'pp. {R.randint(100, 999)}-{R.randint(1000, 1300)}', ' of the proceedings.', 'neg-pages'),
        ('J. Appl. Phys. ', f'{R.randint(50, 130)}({R.randint(1, 24)}), {R.randint(1000, 9999)}–{R.randint(10000, 19999)}', ' (2019)', 'neg-citation'),
        ('Part No. ', f'{d(3)}-{d(4)}-{d(2)}', '', 'neg-part-number'),
        ('Cat. no. ', f'{R.randint(10, 99)}-{d(4)}-{d(2)}', ' (Thermo Fisher)', 'neg-part-number'),
        ('EAN ', '4' + d(12), '', 'neg-ean'),
        ('UPC: ', '0' + d(11), '', 'neg-upc'),
        ('Bevölkerung: ', f'{R.randint(1, 99)}.{d(3)}.{d(3)}', ' Einwohner', 'neg-localized-number'),
        ('Population ', f'{R.randint(1, 99)},{d(2)},{d(2)},{d(3)}', ' (Census)', 'neg-localized-number-in'),
        ('PLZ ', f'{R.randint(10000, 99999)}', ' Berlin', 'neg-postcode'),
        ('〒', f'{d(3)}-{d(4)}', ' 東京都千代田区', 'neg-postcode-jp'),
        ('CEP ', f'{d(5)}-{d(3)}', ' São Paulo', 'neg-postcode-br'),
        ('Duration ', f'{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}.{d(3)}', '', 'neg-duration'),
        ('Interface eth0 HWaddr ', ':'.join(hexs(2) for _ in range(6)).upper(), '', 'neg-mac'),
        ('auto it = ', R.choice(['std::vector<int>::iterator', 'std::chrono::system_clock::now()', 'boost::asio::ip::tcp']), '', 'neg-cpp-scope'),
        ('sha256: ', hexs(64), '', 'neg-sha256'),
        ('md5sum ', hexs(32), '  backup.tar.gz', 'neg-md5'),
        ('See section ', f'{R.randint(1, 9)}.{R.randint(1, 9)}.{R.randint(1, 9)}.{R.randint(1, 9)}', ' of the spec', 'neg-section-number'),
        ('Serial number: ', f'{rs(3, string.ascii_uppercase)}{d(9)}', '', 'neg-serial'),
        ('Ref: ', None, '', 'neg-16digit-nonluhn'),
        ('Case ID ', f'{d(2)}-{d(6)}-{d(4)}', '', 'neg-case-id'),
        ('BIC: ', R.choice(['DEUTDEFFXXX', 'COBADEFFXXX', 'BNPAFRPP', 'INGBNL2A', 'CAIXESBBXXX', 'BCITITMM']), '', 'neg-bic'),
        ('Score ', f'{R.randint(0, 5)}-{R.randint(0, 5)}', ' after extra time', 'neg-score'),
        ('Kernel ', f'{R.randint(4, 6)}.{R.randint(0, 19)}.{R.randint(0, 200)}-{R.randint(1, 200)}-generic', '', 'neg-kernel-version'),
    ]
    pre, val, suf, tag = opts[k]
    if val is None:
        while True:
            val = ' '.join(d(4) for _ in range(4))
            if not luhn_ok(val) and val[0] in '3456':
                break
        val = val
    return pre, val, suf, tag


def neg_config():
    """config keys named like secrets, non-secret values"""
    opts = [
        ('secret_name: ', f'prod/{R.choice(["payments", "orders", "auth"])}/db-credentials', 'negcfg-secret_name'),
        ('token_url: ', 'https://auth.example.com/oauth2/token', 'negcfg-token_url'),
        ('password_policy: ', R.choice(['strict', 'moderate', 'default']), 'negcfg-password_policy'),
        ('password_min_length: ', str(R.choice([8, 10, 12, 16])), 'negcfg-number'),
        ('token_expiry: ', str(R.choice([3600, 86400, 900])), 'negcfg-number'),
        ('api_key_header: ', 'X-API-Key', 'negcfg-header-name'),
        ('PASSWORD_FILE=', '/run/secrets/db_password', 'negcfg-file-path'),
        ('SECRET_KEY_FILE=', '/etc/app/secret.key', 'negcfg-file-path'),
        ('password: ', '${DB_PASSWORD}', 'negcfg-env-ref'),
        ('DATABASE_PASSWORD=', '${{ secrets.DB_PASSWORD }}', 'negcfg-env-ref'),
        ('api_key: ', '<YOUR_API_KEY>', 'negcfg-placeholder'),
        ('password: ', '********', 'negcfg-masked'),
        ('"token_type": ', '"Bearer"', 'negcfg-token_type'),
        ('password_hash_algorithm: ', 'argon2id', 'negcfg-algo'),
        ('secret_version: ', 'latest', 'negcfg-secret_version'),
        ('tokenizer: ', 'bert-base-uncased', 'negcfg-tokenizer'),
        ('max_tokens: ', '4096', 'negcfg-number'),
        ('secretKeyRef:\n    name: ', 'db-secret', 'negcfg-k8s-ref'),
        ('password = ', 'os.environ["DB_PASSWORD"]', 'negcfg-code-env'),
        ('token = ', 'get_access_token(client_id, scope)', 'negcfg-code-call'),
        ('auth_token_ttl: ', '15m', 'negcfg-duration'),
        ('password_reset_url: ', 'https://example.com/account/reset', 'negcfg-url'),
        ('secret_arn: ', 'arn:aws:secretsmanager:eu-west-1:' + d(12) + ':secret:prod/db-' + rs(6), 'negcfg-arn'),
        ('enable_password_auth: ', 'false', 'negcfg-bool'),
        ('key_vault_secret_name: ', 'storage-connection-string', 'negcfg-secret_name'),
        ('password: ', 'null', 'negcfg-null'),
        ('token_endpoint_auth_method: ', 'client_secret_basic', 'negcfg-enum'),
        ('vault_path: ', 'secret/data/myapp/config', 'negcfg-path'),
        ('access_token_lifetime: ', 'PT1H', 'negcfg-duration'),
        ('secret: ', 'false', 'negcfg-bool'),
    ]
    return R.choice(opts)


def neg_text():
    """text-level hard negatives for e-mail / IP / URL detectors"""
    opts = [
        ('Meet me ', 'at the station. Dot', ' the i\'s before you send it.', 'negtxt-at-dot-prose'),
        ('Install with ', 'npm i @angular/core@17.3.1', '', 'negtxt-npm-at'),
        ('', '@app.route("/login", methods=["POST"])', '', 'negtxt-decorator'),
        ('thanks ', '@maria_dev', ' for the review!', 'negtxt-mention'),
        ('docker pull ', 'nginx@sha256:' + hexs(64), '', 'negtxt-docker-digest'),
        ('DB URL: ', 'postgres://localhost:5432/orders', '', 'negtxt-url-nocred'),
        ('clone ', 'https://github.com/acme/widgets.git', '', 'negtxt-url-nocred'),
        ('ssh ', 'deploy@bastion', ' -p 2222', 'negtxt-ssh-userhost'),
        ('See ', 'https://api.slack.com/messaging/webhooks', ' for setup', 'negtxt-webhook-docs'),
        ('', 'We are at capacity. Dot releases resume Monday', '.', 'negtxt-at-dot-prose'),
        ('Visit us ', 'at www.example.com', ' for details', 'negtxt-at-url'),
        ('', 'the price is 5 at 10.30 am', '', 'negtxt-at-time'),
    ]
    return R.choice(opts)


# ----------------------------------------------------------------------------------------- settings
def person(loc):
    f = FK[loc]
    return f.name()


def company(loc):
    return FK[loc].company()


def mail_header(loc):
    D = Doc('mail-header', loc)
    nm = person(loc)
    e1, t1 = email(loc)
    e2, t2 = email(loc)
    D.t(f'Return-Path: <')
    b, tb = email_bounce(loc)
    D.p('email', b, tb).t('>\nReceived: from mail.example.net (mail.example.net [')
    D.p('ipv4', ipv4(), 'ipv4-received').t('])\n\tby mx.google.com with ESMTPS id ' + rs(12).lower() + ';\n\t')
    pre, v, suf, tg = neg_item()
    D.t('X-Info: ' + pre).x(v, tg).t(suf + '\n')
    D.t(f'From: "{nm}" <').p('email', e1, t1).t('>\nTo: ').p('email', e2, t2)
    if R.random() < 0.5:
        e3, t3 = email(loc)
        D.t(', ').p('email', e3, t3)
    D.t('\nSubject: Re: Angebot / offer ' + d(5) + '\n')
    if R.random() < 0.5:
        v6, tg6 = ipv6()
        D.t('X-Originating-IP: [').p('ipv6', v6, tg6).t(']\n')
    D.t('Message-ID: <').i(f'{rs(16).lower()}@mail.gmail.com', 'ign-message-id').t('>\nMIME-Version: 1.0\n')
    return D


def signature(loc):
    D = Doc('signature', loc)
    nm = person(loc)
    greet = {'de_DE': 'Mit freundlichen Grüßen', 'fr_FR': 'Cordialement', 'nl_NL': 'Met vriendelijke groet',
             'es_ES': 'Saludos cordiales', 'it_IT': 'Cordiali saluti', 'ja_JP': 'よろしくお願いいたします。', 'pt_BR': 'Atenciosamente',
             'en_IN': 'Regards', 'en_GB': 'Kind regards', 'en_US': 'Best,'}[loc]
    D.t(f'{greet}\n\n{nm}\n{FK[loc].job()}\n{company(loc)}\n{FK[loc].address()}\n')
    lab = TEL_LABEL[loc]
    ph, tg = phone(loc)
    D.t(R.choice(lab)).p('phone', ph, tg).t('\n')
    if R.random() < 0.6:
        ph, tg = phone(loc)
        D.t(R.choice(lab)).p('phone', ph, tg).t('\n')
    if R.random() < 0.4:
        ph, tg = phone(loc)
        D.t('Fax: ').p('phone', ph, tg).t('\n')
    if loc == 'en_US' and R.random() < 0.5:
        num, ext, tg = ph_us_ext()
        D.t('Office: ').p('phone', num, tg).t(ext[:len(ext) - len(ext.lstrip())]).a(ext.lstrip(), 'aux-us-extension').t('\n')
    e, te = email(loc) if R.random() < 0.8 else email_obf(loc)
    D.t(R.choice(['E-Mail: ', 'Email: ', 'e: ', 'Mail: ', ''])).p('email', e, te).t('\n')
    if R.random() < 0.3:
        pre, v, suf, tg = neg_item()
        D.t(pre).x(v, tg).t(suf + '\n')
    if R.random() < 0.25:
        ib, ti = iban(loc)
        D.t(R.choice(['IBAN: ', 'IBAN ', 'Bankverbindung: IBAN '])).p('iban', ib, ti).t('\n')
    return D


def log_lines(loc):
    D = Doc('log', loc)
    for _ in range(R.randint(2, 4)):
        k = R.randint(0, 6)
        ts = f'2024-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}Z'
        if k == 0:
            D.p('ipv4', ipv4(), 'ipv4-nginx').t(f' - - [{R.randint(1, 28)}/Mar/2024:{R.randint(0, 23):02d}:{R.randint(10, 59)}:{R.randint(10, 59)} +0000] "GET /api/v{R.randint(1, 3)}/orders/{d(6)} HTTP/1.1" 200 {R.randint(100, 99999)} "-" "curl/8.4.0"\n')
        elif k == 1:
            D.t(f'Mar {R.randint(1, 28)} {R.randint(10, 23)}:{R.randint(10, 59)}:{R.randint(10, 59)} bastion sshd[{R.randint(1000, 99999)}]: Failed password for invalid user {R.choice(["admin", "oracle", "test"])} from ').p('ipv4', ipv4(), 'ipv4-sshd').t(f' port {R.randint(1024, 65535)} ssh2\n')
        elif k == 2:
            v6, tg = ipv6()
            D.t(f'{ts} INFO  [http-nio-8080-exec-{R.randint(1, 9)}] c.a.AuthFilter - login ok user_id={d(6)} client=').p('ipv6', v6, tg).t('\n')
        elif k == 3:
            v6, tg = ipv6()
            D.t(f'{ts} WARN rate limit exceeded for [').p('ipv6', v6, tg).t(f']:{R.randint(1024, 65535)}\n')
        elif k == 4:
            e, te = email(loc)
            D.t(f'{ts} ERROR mailer: delivery failed rcpt=<').p('email', e, te).t(f'> status=5.1.1 relay=').p('ipv4', ipv4(), 'ipv4-kv').t(f':25\n')
        elif k == 5:
            pre, v, suf, tg = neg_item()
            D.t(f'{ts} DEBUG {pre}').x(v, tg).t(f'{suf} src=').p('ipv4', ipv4(), 'ipv4-kv').t('\n')
        else:
            D.t(f'{ts} level=info msg="request" method=POST path=/v1/payments remote_addr=').p('ipv4', ipv4(), 'ipv4-kv').t(f':{R.randint(1024, 65535)} latency_ms={R.randint(1, 900)}\n')
    return D


def env_file(loc):
    D = Doc('env', loc)
    D.t(f'# .env for {R.choice(["staging", "production", "dev"])}\nAPP_ENV=production\nPORT={R.choice([3000, 8080])}\n')
    for _ in range(R.randint(2, 4)):
        k = R.randint(0, 8)
        if k == 0:
            tk, tg = token(); name = {'tok-github': 'GITHUB_TOKEN', 'tok-slack': 'SLACK_BOT_TOKEN', 'tok-stripe': 'STRIPE_SECRET_KEY', 'tok-aws': 'AWS_ACCESS_KEY_ID', 'tok-google': 'GOOGLE_API_KEY', 'tok-openai': 'OPENAI_API_KEY', 'tok-huggingface': 'HF_TOKEN', 'tok-npm': 'NPM_TOKEN', 'tok-sendgrid': 'SENDGRID_API_KEY', 'tok-twilio': 'TWILIO_API_KEY', 'tok-gitlab': 'GITLAB_TOKEN', 'tok-anthropic': 'ANTHROPIC_API_KEY'}
            nmk = next((v for kk, v in name.items() if tg.startswith(kk)), 'API_TOKEN')
            q = R.choice(['', '"', "'"])
            D.t(f'{nmk}={q}').p('secret', tk, tg + '-env').t(q + '\n')
        elif k == 1:
            pw, tg = password(); q = R.choice(['', '"', "'"])
            D.t(f'{R.choice(["DB_PASSWORD", "POSTGRES_PASSWORD", "SMTP_PASS", "REDIS_PASSWORD", "ADMIN_PASSWORD"])}={q}').p('secret', pw, tg + '-env').t(q + '\n')
        elif k == 2:
            a, pw, b, tg = url_cred()
            D.t(f'DATABASE_URL={a}').p('secret', pw, tg).t(b + '\n')
        elif k == 3:
            D.t('AWS_SECRET_ACCESS_KEY=').p('secret', rs(40, A62 + '+/'), 'aws-secret-key-env').t('\n')
        elif k == 4:
            a, s, b, tg = webhook()
            D.t(f'SLACK_WEBHOOK_URL={a}').p('secret', s, tg).t(b + '\n')
        elif k == 5:
            pre, v, tg = neg_config()
            D.t(pre.upper().replace(': ', '=') if ':' in pre and '\n' not in pre else pre).x(v, tg).t('\n')
        elif k == 6:
            D.t('JWT_SECRET=').p('secret', rs(R.choice([32, 48, 64]), A62 + '_-'), 'jwt-secret-env').t('\n')
        elif k == 7:
            e, te = email(loc)
            D.t('ADMIN_EMAIL=').p('email', e, te).t('\n')
        else:
            D.t(f'SENTRY_RELEASE=').x(f'{R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 20)}.{R.randint(100, 999)}', 'neg-version-env').t('\n')
    return D


def yaml_cfg(loc):
    D = Doc('yaml', loc)
    D.t(f'# config/{R.choice(["app", "settings", "values"])}.yaml\nservice:\n  name: {R.choice(["billing", "orders", "auth"])}-api\n  replicas: {R.randint(1, 6)}\n')
    for _ in range(R.randint(2, 4)):
        k = R.randint(0, 7)
        if k == 0:
            pw, tg = password(); q = R.choice(['', '"', "'"])
            D.t(f'database:\n  host: db.internal\n  user: app\n  password: {q}').p('secret', pw, tg + '-yaml').t(q + '\n')
        elif k == 1:
            tk, tg = token()
            D.t(f'  {R.choice(["api_key", "token", "access_token", "apiKey", "auth_token", "secret_key"])}: ').p('secret', tk, tg + '-yaml').t('\n')
        elif k == 2:
            pre, v, tg = neg_config()
            D.t('  ' + pre).x(v, tg).t('\n')
        elif k == 3:
            pre, v, tg = neg_config()
            D.t('  ' + pre).x(v, tg).t('\n')
        elif k == 4:
            a, s, b, tg = webhook()
            D.t('alerting:\n  webhook_url: ' + a).p('secret', s, tg).t(b + '\n')
        elif k == 5:
            D.t('  image: registry.example.io/app:').x(f'{R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 20)}.{R.randint(100, 999)}', 'neg-version-image-tag').t('\n')
        elif k == 6:
            D.t('smtp:\n  host: smtp.example.com\n  username: ').p('email', *email(loc)).t('\n  password: ').p('secret', *[(lambda t: (t[0], t[1] + '-yaml'))(password())][0]).t('\n')
        else:
            D.t('  allowed_ips:\n    - ').p('ipv4', ipv4(), 'ipv4-yaml-list').t('\n    - ').p('ipv6', *ipv6()).t('\n')
    return D


def compose(loc):
    D = Doc('docker-compose', loc)
    pw, tg = password()
    D.t("version: '3.8'\nservices:\n  db:\n    image: postgres:16.2\n    environment:\n      POSTGRES_USER: app\n      POSTGRES_PASSWORD: ").p('secret', pw, tg + '-compose').t('\n')
    if R.random() < 0.5:
        D.t('      - PGADMIN_DEFAULT_EMAIL=').p('email', *email(loc)).t('\n')
    a, pw, b, tg = url_cred()
    D.t('  worker:\n    environment:\n      - BROKER_URL=' + a).p('secret', pw, tg).t(b + '\n')
    pre, v, tgn = neg_config()
    if '\n' not in pre:
        D.t('      - ' + pre.replace(': ', '=').upper()).x(v, tgn).t('\n')
    D.t('    ports:\n      - "8080:80"\n')
    return D


def csv_rows(loc):
    D = Doc('csv', loc)
    f = FK[loc]
    cols = R.choice([['id', 'name', 'email', 'phone', 'card_number', 'amount'], ['customer_id', 'full_name', 'iban', 'email', 'created'],
                     ['id', 'name', 'phone', 'city', 'last_ip'], ['order', 'name', 'card', 'exp', 'total']])
    sep = R.choice([',', ';', ',', '\t'])
    D.t(sep.join(cols) + '\n')
    for _ in range(R.randint(2, 4)):
        first = True
        for c in cols:
            if not first:
                D.t(sep)
            first = False
            if c in ('id', 'customer_id'):
                D.x(d(R.choice([5, 6, 7])), 'neg-csv-id')
            elif c == 'order':
                D.x(f'{d(3)}-{d(7)}-{d(7)}', 'neg-csv-order')
            elif c in ('name', 'full_name'):
                D.t(f.name().replace(sep, ' '))
            elif c == 'email':
                D.p('email', *email(loc))
            elif c == 'phone':
                q = R.random() < 0.3
                D.t('"' if q else '').p('phone', *phone(loc)).t('"' if q else '')
            elif c in ('card_number', 'card'):
                D.p('credit_card', *(lambda c_: (c_[0], c_[1] + '-csv'))(card()))
            elif c == 'amount' or c == 'total':
                D.x(f'{R.randint(1, 9999)}.{d(2)}', 'neg-csv-amount')
            elif c == 'iban':
                D.p('iban', *iban(loc))
            elif c == 'created':
                D.x(f'{R.randint(2019, 2025)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}', 'neg-csv-date')
            elif c == 'city':
                D.t(f.city().replace(sep, ' '))
            elif c == 'last_ip':
                D.p('ipv4', ipv4(), 'ipv4-csv')
            elif c == 'exp':
                D.x(f'{R.randint(1, 12):02d}/{R.randint(25, 30)}', 'neg-csv-exp')
        D.t('\n')
    return D


def json_rec(loc):
    D = Doc('json', loc)
    f = FK[loc]
    D.t('{"user": {"id": ').x(d(7), 'neg-json-id').t(f', "name": "{f.name()}", "email": "').p('email', *email(loc)).t('", "phone": "').p('phone', *phone(loc)).t('"')
    if R.random() < 0.5:
        D.t(', "payment": {"card": "').p('credit_card', *card()).t('", "exp": "').x(f'{R.randint(1, 12):02d}/{R.randint(25, 30)}', 'neg-json-exp').t('"}')
    if R.random() < 0.5:
        D.t(', "iban": "').p('iban', *iban(loc)).t('"')
    D.t('}, "meta": {"ip": "').p('ipv4', ipv4(), 'ipv4-json').t('", "client_version": "').x(f'{R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 20)}.{R.randint(100, 9999)}', 'neg-json-version').t('"')
    D.t(', "ts": ').x('17' + d(8), 'neg-epoch').t('}}\n')
    return D


def code(loc):
    D = Doc('code', loc)
    k = R.randint(0, 5)
    tk, tg = token()
    if k == 0:
        D.t('import openai, os\n\nclient = OpenAI(api_key="').p('secret', tk, tg + '-code').t('")\n')
    elif k == 1:
        D.t('const stripe = require("stripe")(\'').p('secret', tk, tg + '-code').t('\');\n')
    elif k == 2:
        D.t(f'headers = {{"Authorization": "Bearer ').p('secret', tk, tg + '-bearer').t('", "Accept": "application/json"}\n')
    elif k == 3:
        D.t('curl -H "Authorization: token ').p('secret', tk, tg + '-curl').t('" https://api.example.com/v1/me\n')
    elif k == 4:
        D.t(f'# TODO remove before commit\nAPI_KEY = \'').p('secret', tk, tg + '-code').t('\'\n')
    else:
        D.t('git remote add origin https://oauth2:').p('secret', tk, tg + '-git-url').t('@gitlab.example.com/team/app.git\n')
    r = R.randint(0, 5)
    if r == 0:
        pw, tg = password()
        D.t('conn = psycopg2.connect(host="db", user="app", password="').p('secret', pw, tg + '-code-kwarg').t('")\n')
    elif r == 1:
        D.t('aws_secret_access_key = "').p('secret', rs(40, A62 + '+/'), 'aws-secret-key-code').t('"\n')
    elif r == 2:
        D.t('const token = "').p('secret', jwt(), 'jwt-code').t('";\n')
    elif r == 3:
        pre, v, tgn = neg_config()
        if '\n' not in pre:
            D.t(pre.replace(': ', ' = ')).x(v, tgn).t('\n')
    elif r == 4:
        pre, v, suf, tgn = neg_item()
        D.t('# ' + pre).x(v, tgn).t(suf + '\n')
    else:
        a, pw, b, tgu = url_cred()
        D.t(f'engine = create_engine("{a}').p('secret', pw, tgu).t(f'{b}")\n')
    return D


def forum(loc):
    D = Doc('forum', loc)
    k = R.randint(0, 7)
    if k == 0:
        D.t('Hi all, if anyone has spare parts just drop me a line: ').p('email', *email_obf(loc)).t(' or text ').p('phone', *phone(loc)).t('. Cheers!\n')
    elif k == 1:
        D.t('Same issue here after upgrading to ').x(f'{R.randint(1, 20)}.{R.randint(0, 9)}.{R.randint(0, 99)}.{R.randint(100, 9999)}', 'neg-version-forum').t('. My server (').p('ipv4', ipv4(), 'ipv4-prose').t(') keeps rejecting logins.\n')
    elif k == 2:
        D.t('You can reach our support team on ').p('phone', *phone(loc)).t(' (Mon–Fri, 9–17) or email ').p('email', *email(loc)).t('.\n')
    elif k == 3:
        pw, tg = password()
        D.t('For the workshop wifi, the password: ').p('secret', pw, tg + '-prose').t(' (network "Guest").\n')
    elif k == 4:
        num, ext, tg = ph_us_ext()
        D.t('Call me at ').p('phone', num, tg).t(ext[:len(ext) - len(ext.lstrip())]).a(ext.lstrip(), 'aux-us-extension').t(' anytime after 3pm. Ref ').x(f'{d(3)}-{d(7)}-{d(7)}', 'neg-order-amazon').t('\n')
    elif k == 5:
        D.t('Please transfer the deposit to ').p('iban', *iban(loc)).t(' and mention invoice ').x(f'INV-{R.randint(2019, 2025)}-{d(5)}', 'neg-invoice').t('.\n')
    elif k == 6:
        D.t('--\n').t(person(loc) + ' | ').p('phone', *phone(loc)).t(' | ').p('email', *email(loc)).t('\n')
    else:
        D.t('My card ').p('credit_card', *card()).t(' was charged twice on ').x(f'{R.randint(1, 28):02d}.{R.randint(1, 12):02d}.{R.randint(2019, 2025)}', 'neg-date-de').t('.\n')
    return D



PHRASES = {'en_US': ['Give us a call at ', 'Reach me on my cell ', 'Our front desk: '], 'en_GB': ['Ring us on ', 'Call the office on ', 'My mobile is '],
           'de_DE': ['Rufen Sie uns an unter ', 'Erreichbar unter ', 'Rückruf bitte an '], 'fr_FR': ['Appelez-nous au ', 'Joignable au ', 'Mon portable : '],
           'nl_NL': ['Bel ons op ', 'Bereikbaar via ', 'Mijn nummer is '], 'es_ES': ['Llámenos al ', 'Contacto: ', 'Mi móvil es el '],
           'it_IT': ['Chiamateci al ', 'Il mio cellulare è ', 'Recapito: '], 'ja_JP': ['お問い合わせ: ', '連絡先 ', '携帯番号は '],
           'pt_BR': ['Ligue para ', 'Meu WhatsApp é ', 'Contato: '], 'en_IN': ['Call us at ', 'Reach me on ', 'Helpline: ']}


def contact(loc):
    D = Doc('contact-prose', loc)
    for _ in range(R.randint(1, 3)):
        D.t(R.choice(PHRASES[loc])).p('phone', *phone(loc)).t(R.choice(['.\n', ' (9:00-18:00).\n', ', thanks!\n', ' — ask for ' + person(loc) + '.\n']))
    if loc == 'en_US' and R.random() < 0.5:
        num, ext, tg = ph_us_ext()
        D.t('Direct line ').p('phone', num, tg).t(ext[:len(ext) - len(ext.lstrip())]).a(ext.lstrip(), 'aux-us-extension').t('\n')
    if R.random() < 0.4:
        pre, v, suf, tg = neg_item()
        D.t(pre).x(v, tg).t(suf + '\n')
    return D


def payment(loc):
    D = Doc('payment', loc)
    k = R.randint(0, 4)
    if k == 0:
        D.t('Please charge the balance to my ' + R.choice(['Visa', 'card', 'Mastercard', 'AmEx']) + ' ').p('credit_card', *card()).t(', exp ').x(f'{R.randint(1, 12):02d}/{R.randint(25, 30)}', 'neg-card-exp').t('.\n')
    elif k == 1:
        D.t(R.choice(['IBAN: ', 'iban=', 'Kontonummer (IBAN) ', 'IBAN du bénéficiaire : ', 'Rekeningnummer: '])).p('iban', *iban(loc)).t('\n')
        D.t('BIC: ').x(R.choice(['DEUTDEFFXXX', 'INGBNL2A', 'BNPAFRPP']), 'neg-bic').t('\n')
    elif k == 2:
        D.t('txn_id,card,amount\n').x(d(9), 'neg-csv-id').t(',').p('credit_card', *(lambda c_: (c_[0], c_[1] + '-csv'))(card())).t(',').x(f'{R.randint(1, 999)}.{d(2)}', 'neg-csv-amount').t('\n')
    elif k == 3:
        D.t(f'{person(loc)};').p('iban', *iban(loc)).t(';').x(f'{R.randint(1, 999)},{d(2)}', 'neg-csv-amount').t(';EUR\n')
    else:
        D.t('"card_number": "').p('credit_card', *card()).t('", "cvv_present": true, "order_id": "').x(f'{d(3)}-{d(7)}-{d(7)}', 'neg-order-amazon').t('"\n')
    return D


def neg_doc(loc):
    D = Doc('negatives', loc)
    for _ in range(R.randint(2, 4)):
        r = R.random()
        if r < 0.62:
            pre, v, suf, tg = neg_item()
            D.t(pre).x(v, tg).t(suf + '\n')
        elif r < 0.85:
            pre, v, tg = neg_config()
            D.t(pre).x(v, tg).t('\n')
        else:
            pre, v, suf, tg = neg_text()
            D.t(pre).x(v, tg).t(suf + '\n')
    return D


def main():
    gens = [(mail_header, 3), (signature, 9), (log_lines, 4), (env_file, 6), (yaml_cfg, 5), (compose, 3), (csv_rows, 6),
            (json_rec, 4), (code, 7), (forum, 9), (contact, 10), (payment, 8)]
    docs, npos = [], 0
    while npos < 700:
        g = R.choices([g for g, _ in gens], [w for _, w in gens])[0]
        D = g(R.choice(LOCALES))
        docs.append(D.out()); npos += len(D.pos)
    nneg = sum(len(x['neg']) for x in docs)
    while nneg < 700:
        D = neg_doc(R.choice(LOCALES)); docs.append(D.out()); nneg += len(D.neg)
    R.shuffle(docs)
    with open(sys.argv[2] if len(sys.argv) > 2 else 'data.jsonl', 'w') as fh:
        for i, x in enumerate(docs):
            x['id'] = i
            for s in x['pos'] + x['neg']:
                assert x['text'][s['start']:s['end']] == s['text']
            fh.write(json.dumps(x, ensure_ascii=False) + '\n')
    from collections import Counter
    print(len(docs), 'docs', npos, 'pos', nneg, 'neg')
    print(Counter(s['kind'] for x in docs for s in x['pos']))
    print(Counter(x['locale'] for x in docs))


if __name__ == '__main__':
    main()
