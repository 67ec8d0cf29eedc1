"""Generate feedapp/demo/: the bundled demo data, as X API v2 response bodies.

The company, its accounts and their posts are fictional ("Harbor & Pine Logistics").
Everything derived (snowflake ids, t.co links, entity indices, HTML escaping,
note_tweet truncation, retweet text, includes, pagination) is computed here from
the readable description below, so the JSON stays self-consistent.

Wire-format rules followed (see /work/shared/xapi/timeline-example.json):
- post text is HTML-escaped for &, < and > only; entity indices are Unicode code
  point offsets into that escaped text, start inclusive, end exclusive;
- ids are snowflakes: ((epoch_ms - 1288834974657) << 22) | worker << 12 | sequence;
- media attached to a post are linked by one trailing t.co URL; v2 repeats the URL
  entity (same span) once per media item, each with its media_key;
- a long post carries note_tweet {text, entities}; its text is cut after 279 code
  points + "…" and a t.co link to the post (no entity, as in the example);
- a retweet's text is "RT @user: " + the original's text, cut to 140 code points
  with "…"; the original and its author and media come through includes;
- includes hold only what the requested expansions return: referenced tweets,
  their authors (referenced_tweets.id.author_id) and media; author_id itself is
  not expanded, so the timeline owner appears in includes.users only as the author
  of a post its own posts reference (a self-thread).

Run: python tools/make_demo.py   (then python tools/check_demo.py)
"""

from __future__ import annotations

import json
import random
import re
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "feedapp" / "demo"
# The demo's own pictures, drawn below and served by feedapp.media from OUT/media: the host is
# reserved (RFC 2606 .invalid), so the demo never reaches the internet for an image.
MEDIA_HOST = "https://demo-media.invalid"
PICTURES: dict[str, tuple[int, int, str]] = {}  # file name -> (width, height, account) of each photo/poster
TWEPOCH = 1288834974657
PAGE_SIZE = 5  # max_results of the recorded requests
RNG = random.Random(20261126)

COMPANY = "Harbor & Pine Logistics"
OFFICES = [
    {"slug": "columbus", "name": "Columbus Depot (Ohio)"},
    {"slug": "lyon", "name": "Lyon Saint-Priest Hub", "language": "fr"},
]

# username -> user fields; office None = company-wide. Order = users.json order.
ACCOUNTS = {
    "HarborPineNews": dict(id="2931845507", name="Harbor & Pine News", verified=True, office=None),
    "HarborPineSafe": dict(id="3318862041", name="Harbor & Pine Safety", verified=False, office=None),
    "HarborPineHR": dict(id="1187260395584724992", name="H&P People & Benefits", verified=False, office=None),
    "HPL_Columbus": dict(id="1402317748090208256", name="Harbor & Pine Columbus Depot", verified=False,
                         office="columbus"),
    "HPL_Lyon": dict(id="1523977205311762432", name="Harbor & Pine Lyon", verified=False, office="lyon"),
    "HPL_AllHands": dict(id="1610468823349927936", name="H&P All Hands (internal)", verified=False,
                         office=None, protected=True, staff_only=True),
}
# Accounts that only show up through includes (not followed by the demo).
EXTERNAL = {
    "HPL_Fleet": dict(id="1288409616541528064", name="Harbor & Pine Fleet Services", verified=False),
}

# Link targets: name -> (expanded_url, title or None, unwound_url or None)
LINKS = {
    "peak": ("https://harborpine.example/peak-2026?utm_source=x&utm_campaign=peak",
             "Peak season 2026: voluntary overtime sign-up", "https://harborpine.example/peak-2026"),
    "q3": ("https://harborpine.example/news/q3-2026-results", "Q3 2026 results: a letter to our teams", None),
    "scanner": ("https://help.harborpine.example/scanners/leave-with-neighbour", None, None),
    "survey": ("https://harborpine.example/news/staff-survey-2026", "Staff survey 2026: the results", None),
    "holiday": ("https://harborpine.example/people/holiday-pay-us", None, None),
    "report": ("https://harborpine.example/safety/report", "Report a hazard", None),
    "forklift": ("https://harborpine.example/safety/forklift-refresher?utm_source=x",
                 "Forklift refresher sessions", "https://harborpine.example/safety/forklift-refresher"),
    "enrol": ("https://harborpine.example/benefits/enrol-2027", "Open enrolment 2027", None),
    "calls": ("https://harborpine.example/benefits/book-a-call", None, None),
    "crewapp": ("https://crew.harborpine.example/hours", None, None),
    "flu": ("https://harborpine.example/people/flu-shots", "Flu shots on site", None),
    "picker": ("https://harborpine.example/benefits/plan-picker", "Which plan fits me?", None),
    "planning": ("https://lyon.harborpine.example/planning/semaine-48", "Planning semaine 48", None),
    "grippe": ("https://lyon.harborpine.example/sante/vaccination-grippe", None, None),
    "staffing": ("https://intranet.harborpine.example/ops/peak-staffing-v3", None, None),
    "ot": ("https://intranet.harborpine.example/ops/december-overtime", None, None),
}

# The posts, oldest first per account does not matter: they are sorted by time.
# text: raw (unescaped) text; "{name}" inserts a t.co link to LINKS[name].
# media: list of ("photo", w, h, alt or None) / ("video", w, h, duration_ms).
# The media link and the quote link are appended by the generator.
POSTS = [
    # ---------------------------------------------------------------- HarborPineNews
    dict(key="news_peak", user="HarborPineNews", at="2026-11-10T14:02:11",
         text="Peak season is here 📦 From Monday 11/16 every hub moves to extended hours. "
              "Sign-up sheets for voluntary overtime are open now: {peak} #PeakSeason"),
    dict(key="news_welcome", user="HarborPineNews", at="2026-11-12T16:31:40",
         text="Welcome to the 140 seasonal teammates who started this week across our hubs! "
              "Say hi when you see a new face in the yard 👋 #HarborPineFamily"),
    dict(key="news_record", user="HarborPineNews", at="2026-11-13T13:05:27",
         text="New network record: 412,000 parcels sorted in a single day. Thank you, every one of you 🙌 #PeakSeason",
         media=[("photo", 2048, 1365, "Night-shift team at the Columbus depot cheering in front of a parcel "
                                      "sorter, holding a hand-painted banner that reads 412K")]),
    dict(key="news_q3", user="HarborPineNews", at="2026-11-16T15:20:03",
         text="Our Q3 results are out. The short version: volume up 9%, on-time delivery at 97.4% & zero "
              "serious injuries. Thank you. Read the full letter: {q3}"),
    dict(key="news_thread1", user="HarborPineNews", at="2026-11-18T18:45:09",
         text="What changes for drivers this peak 🧵 1/3: route plans now lock at 05:30 instead of 06:00, "
              "so dispatch boards are final before you clock in."),
    dict(key="news_thread2", user="HarborPineNews", at="2026-11-18T18:46:02", reply_to="news_thread1",
         text="2/3: handheld scanners get a new \"Leave with neighbour\" option. Photo proof is required: "
              "no photo, no scan. How it works: {scanner}"),
    dict(key="news_thread3", user="HarborPineNews", at="2026-11-18T18:47:55", reply_to="news_thread2",
         text="3/3: questions? Ask your shift lead or post them in #AskOps on the intranet. "
              "We update the FAQ every Friday."),
    dict(key="news_award", user="HarborPineNews", at="2026-11-20T12:00:48",
         text="Harbor & Pine scored 4.6/5 as an employer in this year's staff survey, our best ever 🏆 "
              "This one belongs to you. Full results: {survey}"),
    dict(key="news_lyon", user="HarborPineNews", at="2026-11-23T10:14:30",
         text="Bonjour from our Lyon hub 🇫🇷 Follow @HPL_Lyon for local news from Saint-Priest (in French). "
              "#HarborPineFamily"),
    dict(key="news_thanks", user="HarborPineNews", at="2026-11-25T21:03:16",
         text="Happy Thanksgiving to our US teams 🦃 Holiday pay rules for Thursday: {holiday} "
              "Lyon team & everyone outside the US: business as usual."),
    # ---------------------------------------------------------------- HarborPineSafe
    dict(key="safe_hivis", user="HarborPineSafe", at="2026-11-10T11:00:52",
         text="👷‍♀️ Hi-vis is mandatory in every yard, every shift, no exceptions. Torn vest? "
              "Swap it for free at the stores cage. #SafetyFirst"),
    dict(key="safe_lift", user="HarborPineSafe", at="2026-11-11T09:30:05",
         text="Lift with your legs, not your back. Anything over 23 kg (50 lb) is a two-person lift "
              "or a trolley job. #SafetyFirst #PeakSeason"),
    dict(key="safe_winter", user="HarborPineSafe", at="2026-11-13T07:15:00",
         text="👷‍♀️ #WinterReady starts now: before you roll out, do the 3-point walkaround. Tyres, "
              "lights & washer fluid. 45 seconds that save lives. #SafetyFirst",
         media=[("video", 1280, 720, 44960)]),
    dict(key="safe_ice", user="HarborPineSafe", at="2026-11-15T06:40:33",
         text="Dock plates are icy in the mornings ❄️ Walk, don't run, and use the handrails on every "
              "dock stair. Report slippery spots to your shift lead or here: {report}"),
    dict(key="safe_forklift", user="HarborPineSafe", at="2026-11-17T13:12:44",
         text="Forklift pre-use checks are logged in the app before the first lift. No check, no keys. "
              "Refresher sessions: {forklift} #SafetyFirst"),
    dict(key="safe_200", user="HarborPineSafe", at="2026-11-19T17:05:21",
         text="200 days without a lost-time injury at @HPL_Columbus 🎉 That's 200 days of people "
              "looking out for each other. Proud of you. #SafetyFirst"),
    dict(key="safe_cold", user="HarborPineSafe", at="2026-11-21T08:20:13",
         text="Temperatures < 0 °C (32 °F) in Lyon and Columbus this week. Layer up, take breaks indoors "
              "& keep drinking water: cold air dries you out too. #WinterReady"),
    dict(key="safe_cutters", user="HarborPineSafe", at="2026-11-24T07:15:39",
         text="Box cutters: always cut away from your body and retract the blade between cuts. "
              "Self-retracting cutters arrive at all hubs this week ✂️ #SafetyFirst"),
    dict(key="safe_fatigue", user="HarborPineSafe", at="2026-11-26T05:48:02",
         text="Busy week, tired bodies. If you feel drowsy behind the wheel, pull over and call dispatch. "
              "Nobody is ever penalised for a fatigue stop. #SafetyFirst"),
    # ---------------------------------------------------------------- HarborPineHR
    dict(key="hr_open", user="HarborPineHR", at="2026-11-10T15:30:00",
         text="Open enrolment for 2027 benefits is OPEN 🩺 You have until Mon Nov 30 to pick your medical, "
              "dental & vision plans. Start here: {enrol} #OpenEnrolment"),
    dict(key="hr_faq", user="HarborPineHR", at="2026-11-12T17:45:18", note=True,
         text="Open enrolment FAQ, the long version 👇 #OpenEnrolment\n\n"
              "1) Do nothing and your 2026 medical, dental & vision plans roll over. The FSA does not: "
              "re-elect it every year.\n"
              "2) New this year: a lower-deductible plan for part-time teammates working 20+ hours a week.\n"
              "3) Adding dependants? Have their dates of birth & ID numbers ready before you start.\n"
              "4) Seasonal hires become eligible after 60 days.\n\n"
              "Questions? Book a 15-minute call with the People team: {calls} or email "
              "benefits@harborpine.example. Shift leads, please share with @HPL_Columbus nights."),
    dict(key="hr_payday", user="HarborPineHR", at="2026-11-14T10:05:57",
         text="Payday heads-up 💸 Because of Thanksgiving, US pay for the week of Nov 23 lands on "
              "Wednesday Nov 25 instead of Friday."),
    dict(key="hr_ot", user="HarborPineHR", at="2026-11-16T08:10:29",
         text="Peak overtime is paid at 1.5x after 40 hours a week (US). Check your hours any time in "
              "the Crew app: {crewapp} #PeakSeason"),
    dict(key="hr_flu", user="HarborPineHR", at="2026-11-18T14:22:08",
         text="Free flu shots on site 💉 Columbus: Tue 11/24, 10 am to 4 pm. Lyon: jeudi 26/11. "
              "No appointment needed. {flu}"),
    dict(key="hr_star", user="HarborPineHR", at="2026-11-20T16:00:44",
         text="Our November Crew Star ⭐ is Marisol from the @HPL_Columbus inbound team: 11 years with us "
              "and still the fastest trailer unload on nights. #CrewStar"),
    dict(key="hr_7days", user="HarborPineHR", at="2026-11-23T09:00:15",
         text="⏰ 7 days left to choose your 2027 benefits. It takes about 10 minutes: {enrol} #OpenEnrolment"),
    dict(key="hr_last", user="HarborPineHR", at="2026-11-25T13:30:37",
         text="Last call: open enrolment closes Monday Nov 30 at 11:59 pm ET. Not sure which plan fits? "
              "Try the plan picker: {picker}"),
    # ---------------------------------------------------------------- HPL_Columbus
    dict(key="col_shift", user="HPL_Columbus", at="2026-11-10T19:12:03",
         text="Shift change from Mon 11/16: B-shift moves to 2:30 pm to 11 pm for peak. "
              "The updated rota is posted by the time clock & in the Crew app."),
    dict(key="col_vets", user="HPL_Columbus", at="2026-11-11T12:00:09",
         text="🇺🇸 Thank you to the 38 veterans on our Columbus team for your service. #VeteransDay"),
    dict(key="col_rt", user="HPL_Columbus", at="2026-11-13T08:02:51", retweet="safe_winter"),
    dict(key="col_pizza", user="HPL_Columbus", at="2026-11-14T23:41:26",
         text="Pizza night for the inbound crew after a record week 🍕 Thanks for showing up big!",
         media=[("photo", 1600, 1200, None)]),
    dict(key="col_welcome", user="HPL_Columbus", at="2026-11-16T11:25:47",
         text="Welcome to our 26 new seasonal drivers! Orientation is in the training room, 7 am sharp. "
              "Bring your license & safety boots."),
    dict(key="col_parking", user="HPL_Columbus", at="2026-11-18T20:07:35",
         text="Parking lot C is closed Thu & Fri for resurfacing. Please use lot A and the shuttle from gate 2."),
    dict(key="fleet_evans", user="HPL_Fleet", at="2026-11-19T14:01:12",
         text="Columbus: 6 new electric step vans arrive Monday ⚡ Charging bays 1 to 6 are reserved for them "
              "from now on. #FleetUpdate"),
    dict(key="col_reply", user="HPL_Columbus", at="2026-11-19T15:10:58", reply_to="fleet_evans",
         text="@HPL_Fleet Great news! Drivers: EV charging training is Friday at 6:30 am in bay 3, "
              "and @HarborPineSafe will run the walkaround."),
    dict(key="col_storm1", user="HPL_Columbus", at="2026-11-20T17:30:24",
         text="⚠️ Winter storm warning for central Ohio tonight. The depot stays open, but 1st-wave routes "
              "are delayed 2 hours tomorrow (Sat 11/21)."),
    dict(key="col_storm2", user="HPL_Columbus", at="2026-11-20T21:04:50", reply_to="col_storm1",
         text="Update: roads are being treated now. If you can't make it in safely, call the shift line at "
              "ext. 4410. No penalty. Stay safe out there."),
    dict(key="col_storm3", user="HPL_Columbus", at="2026-11-21T06:02:17", reply_to="col_storm2",
         text="Update 6 am: 1st-wave departures now at 9:30 am. The yard is plowed & the dock plates are "
              "salted. Drive slow ❄️"),
    dict(key="col_tgiving", user="HPL_Columbus", at="2026-11-23T12:48:06",
         text="Thanksgiving week: the depot is closed Thu 11/26 and open Fri 11/27 with double shifts "
              "(sign-up sheet at the time clock). Holiday pay: {holiday}"),
    dict(key="col_thanks", user="HPL_Columbus", at="2026-11-25T22:15:31",
         text="Thank you, Columbus 🦃 Enjoy the day with your families. See you Friday! #HarborPineFamily"),
    # ---------------------------------------------------------------- HPL_Lyon (French)
    dict(key="lyon_interim", user="HPL_Lyon", at="2026-11-10T07:35:42", lang="fr",
         text="Bienvenue aux 18 intérimaires qui nous rejoignent pour le pic d'activité ! 👋 "
              "Accueil sécurité lundi à 7h en salle Rhône. #PeakSeason"),
    dict(key="lyon_chaussures", user="HPL_Lyon", at="2026-11-12T08:50:19", lang="fr",
         text="Rappel : les chaussures de sécurité sont obligatoires sur tout le quai, y compris pour "
              "les visiteurs. #SécuritéAvantTout"),
    dict(key="lyon_quote", user="HPL_Lyon", at="2026-11-13T15:42:33", lang="fr", quote="news_record",
         text="🇫🇷 Lyon aussi a battu son record : 38 200 colis triés jeudi ! Bravo & merci à toute "
              "l'équipe de nuit 💪 #PeakSeason"),
    dict(key="lyon_pause", user="HPL_Lyon", at="2026-11-16T12:05:08", lang="fr",
         text="La nouvelle salle de pause est ouverte ☕ Micro-ondes, casiers chauffants, coin sieste… "
              "Merci au CSE pour les idées !",
         media=[("photo", 2048, 1536, "Salle de pause lumineuse avec des tables en bois clair, des chaises "
                                      "vertes et une machine à café"),
                ("photo", 1536, 2048, "Rangée de casiers chauffants gris le long d'un mur vert sapin")]),
    dict(key="lyon_horaires", user="HPL_Lyon", at="2026-11-17T09:15:26", lang="fr",
         text="Changement d'horaires à partir du lundi 23/11 : l'équipe d'après-midi commence à 13h30 "
              "(au lieu de 14h). Planning complet : {planning}"),
    dict(key="lyon_neige", user="HPL_Lyon", at="2026-11-19T16:28:55", lang="fr",
         text="Alerte météo 🌨️ Neige attendue demain matin sur l'Est lyonnais. Les tournées du matin "
              "partiront avec 1h de retard. Prudence sur la route !"),
    dict(key="lyon_heures", user="HPL_Lyon", at="2026-11-20T10:40:11", lang="fr",
         text="Heures supplémentaires du pic : majoration de 25 % pour les 8 premières heures, 50 % "
              "au-delà. Inscriptions auprès de votre chef d'équipe."),
    dict(key="lyon_grippe", user="HPL_Lyon", at="2026-11-24T11:02:37", lang="fr",
         text="Vaccination antigrippe sur site jeudi 26/11 de 9h à 15h, salle Rhône. Sans rendez-vous 💉 "
              "Infos : {grippe}"),
    dict(key="lyon_merci", user="HPL_Lyon", at="2026-11-25T14:55:04", lang="fr",
         text="Merci à @HarborPineSafe pour la formation gestes & postures de ce matin : 42 collègues "
              "formés ! #SécuritéAvantTout"),
    dict(key="lyon_badge", user="HPL_Lyon", at="2026-11-26T08:12:45", lang="fr",
         text="Bonne fin de semaine à tous ! Pensez à badger en sortie : le système de pointage a été "
              "mis à jour ce matin 🕐"),
    # ---------------------------------------------------------------- HPL_AllHands (protected)
    dict(key="all_staffing", user="HPL_AllHands", at="2026-11-11T16:45:20",
         text="Internal: peak staffing plan v3 is live. Hub leads, please confirm your weekend coverage "
              "by Fri 11/13: {staffing}"),
    dict(key="all_internal", user="HPL_AllHands", at="2026-11-15T12:00:00",
         text="Reminder: what's posted on this account stays internal. Please don't screenshot or forward "
              "it outside Harbor & Pine. Thanks!"),
    dict(key="all_scanner", user="HPL_AllHands", at="2026-11-19T18:33:07",
         text="Sneak peek at the new handheld scanners rolling out in January 📱 Pilot teams in Columbus "
              "& Lyon start Mon Dec 7.",
         media=[("photo", 1200, 1600, "Close-up of a rugged yellow handheld scanner showing a delivery "
                                      "checklist on its screen")]),
    dict(key="all_ot", user="HPL_AllHands", at="2026-11-22T19:20:48",
         text="December overtime cap: 12 h/week per person in the US, 10 h in France. Exceptions need an "
              "ops director's sign-off. Details: {ot}"),
    dict(key="all_thanks", user="HPL_AllHands", at="2026-11-25T17:00:05",
         text="Thank you all for a record-breaking November. Year-end bonus details come in the all-hands "
              "call on Thu Dec 3; the invite is in your inbox."),
]

HASHTAG_RE = re.compile(r"(?<![\w&/])#(\w+)")
MENTION_RE = re.compile(r"(?<![\w@])@(\w{1,15})")
ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def escape(text: str) -> str:
    """X escapes exactly &, < and > in post text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def snowflake(when: datetime) -> int:
    ms = int(when.timestamp() * 1000)
    return ((ms - TWEPOCH) << 22) | (RNG.randrange(1, 1024) << 12) | RNG.randrange(0, 8)


def display_url(url: str) -> str:
    rest = re.sub(r"^https?://(www\.)?", "", url)
    host, sep, path = rest.partition("/")
    path = sep + path
    return host + (path[:15] + "…" if len(path) > 15 else path)


def tco() -> str:
    return "https://t.co/" + rand(10)


USERS = {**{u: dict(a, username=u) for u, a in ACCOUNTS.items()},
         **{u: dict(a, username=u) for u, a in EXTERNAL.items()}}


def user_object(username: str) -> dict:
    u = USERS[username]
    if "avatar" not in u:
        RNG.randrange(10**18, 2 * 10**18), rand(8)  # as when these were X URLs: every later id stays the same
        u["avatar"] = f"{MEDIA_HOST}/avatar-{username.lower()}.png"
    return {"id": u["id"], "name": u["name"], "username": username, "protected": u.get("protected", False),
            "verified": u["verified"], "profile_image_url": u["avatar"]}


def find_entities(text: str, urls: list[dict]) -> dict:
    """Entities of an escaped text; urls are given as dicts without indices, located here."""
    ents: dict[str, list] = {}
    for ent in urls:
        start = text.index(ent["url"])
        ents.setdefault("urls", []).append({"start": start, "end": start + len(ent["url"]), **ent})
    for m in MENTION_RE.finditer(text):
        ents.setdefault("mentions", []).append(
            {"start": m.start(), "end": m.end(), "username": m[1], "id": USERS[m[1]]["id"]})
    for m in HASHTAG_RE.finditer(text):
        ents.setdefault("hashtags", []).append({"start": m.start(), "end": m.end(), "tag": m[1]})
    return {k: sorted(v, key=lambda e: e["start"]) for k, v in ents.items()}


def entities_upto(ents: dict, limit: int, shift: int = 0) -> dict:
    """Entities lying wholly before limit, moved right by shift."""
    out = {}
    for kind, items in ents.items():
        kept = [dict(e, start=e["start"] + shift, end=e["end"] + shift) for e in items if e["end"] <= limit]
        if kept:
            out[kind] = kept
    return out


def build() -> dict[str, dict]:
    posts = sorted(POSTS, key=lambda p: p["at"])
    assert len({p["at"] for p in posts}) == len(posts), "created_at must be unique"
    by_key: dict[str, dict] = {}
    media_objects: dict[str, dict] = {}
    for p in posts:
        when = datetime.fromisoformat(p["at"]).replace(tzinfo=timezone.utc)
        tid = str(snowflake(when))
        author = USERS[p["user"]]
        tweet = {"id": tid, "text": None, "edit_history_tweet_ids": [tid], "author_id": author["id"],
                 "created_at": p["at"] + ".000Z", "conversation_id": tid, "lang": p.get("lang", "en"),
                 "possibly_sensitive": False}
        media_keys = []
        if p.get("retweet"):
            orig = by_key[p["retweet"]]
            oauthor = orig["_user"]
            prefix = f"RT @{oauthor}: "
            raw = prefix + orig["_raw"]
            cut = raw if len(raw) <= 140 else raw[:139].rstrip() + "…"
            tweet["text"] = escape(cut)
            tweet["lang"] = orig["lang"]
            visible = len(escape(cut.rstrip("…"))) if cut != raw else len(tweet["text"])
            ents = {"mentions": [{"start": 3, "end": 4 + len(oauthor), "username": oauthor,
                                  "id": USERS[oauthor]["id"]}]}
            for kind, items in entities_upto(orig["entities"], visible - len(escape(prefix)),
                                             len(escape(prefix))).items():
                ents.setdefault(kind, []).extend(items)
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": orig["id"]}]
            tweet["entities"] = ents
        else:
            urls = []

            def link(m: re.Match) -> str:
                expanded, title, unwound = LINKS[m[1]]
                ent = {"url": tco(), "expanded_url": expanded, "display_url": display_url(expanded)}
                if title:
                    ent.update(status=200, title=title)
                if unwound:
                    ent.update(status=200, unwound_url=unwound)
                urls.append(ent)
                return ent["url"]

            raw = re.sub(r"\{(\w+)\}", link, p["text"])
            uploaded = when - timedelta(seconds=RNG.randrange(40, 400))
            for i, (kind, w, h, extra) in enumerate(p.get("media", [])):
                mid = snowflake(uploaded + timedelta(milliseconds=i * 1700))  # uploaded in order
                key = f"{3 if kind == 'photo' else 7}_{mid}"
                media_keys.append(key)
                if kind == "photo":
                    rand(15)  # the random part of the X URL these once were: later ids stay the same
                    obj = {"media_key": key, "type": "photo", "url": f"{MEDIA_HOST}/photo-{mid}.jpg",
                           "width": w, "height": h}
                    PICTURES[f"photo-{mid}.jpg"] = (w, h, p["user"])
                    if extra:
                        obj["alt_text"] = extra
                else:
                    base = f"https://video.twimg.com/ext_tw_video/{mid}/pu"
                    rand(16)  # the random part of the poster's X URL: later ids stay the same
                    obj = {"media_key": key, "type": "video",
                           "preview_image_url": f"{MEDIA_HOST}/poster-{mid}.jpg",
                           "width": w, "height": h, "duration_ms": extra,
                           "variants": [
                               {"content_type": "application/x-mpegURL", "url": f"{base}/pl/{rand(16)}.m3u8?tag=12"},
                               {"bit_rate": 632000, "content_type": "video/mp4",
                                "url": f"{base}/vid/avc1/480x270/{rand(16)}.mp4?tag=12"},
                               {"bit_rate": 2176000, "content_type": "video/mp4",
                                "url": f"{base}/vid/avc1/1280x720/{rand(16)}.mp4?tag=12"}]}
                if kind != "photo":
                    PICTURES[f"poster-{mid}.jpg"] = (w, h, p["user"])
                media_objects[key] = obj
            if media_keys:
                pic = tco()
                kind = "photo" if media_keys[0].startswith("3_") else "video"
                for key in media_keys:  # v2 repeats the entity per media item, same span
                    urls.append({"url": pic, "expanded_url": f"https://x.com/{p['user']}/status/{tid}/{kind}/1",
                                 "display_url": "pic.x.com/" + pic.rsplit("/", 1)[1], "media_key": key})
                raw += " " + pic
                tweet["attachments"] = {"media_keys": media_keys}
            if p.get("quote"):
                q = by_key[p["quote"]]
                expanded = f"https://x.com/{q['_user']}/status/{q['id']}"
                ent = {"url": tco(), "expanded_url": expanded, "display_url": display_url(expanded)}
                urls.append(ent)
                raw += " " + ent["url"]
                tweet["referenced_tweets"] = [{"type": "quoted", "id": q["id"]}]
            if p.get("reply_to"):
                parent = by_key[p["reply_to"]]
                tweet["conversation_id"] = parent["conversation_id"]
                tweet["in_reply_to_user_id"] = parent["author_id"]
                tweet["referenced_tweets"] = [{"type": "replied_to", "id": parent["id"]}]
            text = escape(raw)
            ents = find_entities(text, urls)
            if p.get("note"):
                assert len(raw) > 280
                tweet["note_tweet"] = {"text": text, "entities": ents}
                short = escape(raw[:279].rstrip() + "…")
                visible = len(short) - 1
                tweet["text"] = short + " " + tco()
                ents = entities_upto(ents, visible)
            else:
                assert len(raw) <= 280, (p["key"], len(raw))
                tweet["text"] = text
            if ents:
                tweet["entities"] = ents
        # Field order as X returns it.
        order = ["id", "text", "edit_history_tweet_ids", "author_id", "created_at", "conversation_id",
                 "in_reply_to_user_id", "lang", "possibly_sensitive", "referenced_tweets", "attachments",
                 "entities", "note_tweet"]
        tweet = {k: tweet[k] for k in order if k in tweet}
        by_key[p["key"]] = dict(tweet, _user=p["user"], _raw=raw, _media=media_keys)
    return by_key, media_objects


def public(t: dict) -> dict:
    return {k: v for k, v in t.items() if not k.startswith("_")}


def page_body(tweets: list[dict], by_id: dict, media_objects: dict, next_token: str | None) -> dict:
    inc_tweets, inc_users, inc_media = [], [], []

    def add_media(t):
        for key in t["_media"]:
            if media_objects[key] not in inc_media:
                inc_media.append(media_objects[key])

    for t in tweets:
        add_media(t)
    for t in tweets:
        for ref in t.get("referenced_tweets", []):
            r = by_id[ref["id"]]
            if public(r) not in inc_tweets:
                inc_tweets.append(public(r))
                add_media(r)
            u = user_object(r["_user"])
            if u not in inc_users:
                inc_users.append(u)
    body = {"data": [public(t) for t in tweets]}
    includes = {k: v for k, v in (("media", inc_media), ("users", inc_users), ("tweets", inc_tweets)) if v}
    if includes:  # X leaves out "includes" when nothing was expanded
        body["includes"] = includes
    body["meta"] = {"result_count": len(tweets), "newest_id": tweets[0]["id"], "oldest_id": tweets[-1]["id"]}
    if next_token:
        body["meta"]["next_token"] = next_token
    return body


# Colours per account (no brand's): avatars and the photos each account posts share them.
PALETTE = {"HarborPineNews": (31, 78, 121), "HarborPineSafe": (196, 98, 16), "HarborPineHR": (122, 62, 140),
           "HPL_Columbus": (27, 120, 92), "HPL_Lyon": (176, 48, 72), "HPL_AllHands": (70, 70, 80),
           "HPL_Fleet": (60, 110, 160)}


def initials(name: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z]+", name) if w and w[0].isupper()]
    return "".join(w[0] for w in words[:2]) or name[:1].upper()


def draw_avatar(username: str):
    """A flat disc of the account's colour with its initials: no face, no logo."""
    from PIL import Image, ImageDraw, ImageFont

    size = 96
    image = Image.new("RGB", (size, size), PALETTE[username])
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    draw.text((size / 2, size / 2), initials(USERS[username]["name"]), fill=(255, 255, 255), font=font, anchor="mm")
    return image


def draw_photo(name: str, width: int, height: int, username: str):
    """A soft gradient in the account's colour with a few simple shapes, at most 680 px wide or tall."""
    from PIL import Image, ImageDraw

    scale = min(1.0, 680 / max(width, height))
    w, h = round(width * scale), round(height * scale)
    rng = random.Random(name)  # its own generator: drawing never moves the ids above
    base = PALETTE[username]
    top = tuple(min(255, c + 90) for c in base)
    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image)
    for y in range(h):
        t = y / max(h - 1, 1)
        draw.line([(0, y), (w, y)], fill=tuple(round(a * (1 - t) + b * t) for a, b in zip(top, base)))
    for _ in range(5):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(min(w, h) // 10, min(w, h) // 4)
        shade = tuple(min(255, c + rng.randrange(20, 120)) for c in base)
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=shade)
        else:
            draw.rectangle([x - r, y - r // 2, x + r, y + r // 2], fill=shade)
    draw.rectangle([0, round(h * 0.8), w, h], fill=tuple(max(0, c - 40) for c in base))  # a floor line
    return image


def draw_pictures(folder: Path) -> None:
    """Every avatar and photo the demo's URLs name, into folder (small files, committed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.*"):
        old.unlink()
    for username in USERS:
        draw_avatar(username).save(folder / f"avatar-{username.lower()}.png", optimize=True)
    for name, (w, h, username) in PICTURES.items():
        draw_photo(name, w, h, username).save(folder / name, quality=70, optimize=True)


def main() -> None:
    by_key, media_objects = build()
    by_id = {t["id"]: t for t in by_key.values()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "__init__.py").touch()
    for old in OUT.glob("timeline_*.json"):
        old.unlink()
    users = [user_object(u) for u in ACCOUNTS]
    manifest = {"company": COMPANY, "offices": OFFICES, "sources": [], "pages": {}}
    files = {"users.json": {"data": users}}
    for username, acct in ACCOUNTS.items():
        manifest["sources"].append({"username": username, "office": acct["office"],
                                    "staff_only": acct.get("staff_only", False)})
        own = sorted((t for t in by_key.values() if t["_user"] == username), key=lambda t: -int(t["id"]))
        pages = [own[i:i + PAGE_SIZE] for i in range(0, len(own), PAGE_SIZE)]
        names = []
        for n, chunk in enumerate(pages, 1):
            token = rand(45, string.ascii_lowercase + string.digits) if n < len(pages) else None
            name = f"timeline_{username}_{n}.json"
            files[name] = page_body(chunk, by_id, media_objects, token)
            names.append(name)
        manifest["pages"][username] = names
    files["manifest.json"] = manifest
    for name, body in files.items():
        (OUT / name).write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    draw_pictures(OUT / "media")
    print(f"wrote {len(files)} files to {OUT}")


if __name__ == "__main__":
    main()
