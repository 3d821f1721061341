"""The words of the demo org: meeting transcripts, inbound emails, campaign replies (data only)."""

from __future__ import annotations

GLOBEX_DISCOVERY = """\
[00:00:05] Alice Moreau: Thanks for making the time, Hank. Lena, good to meet you too.
[00:00:11] Hank Scorpio: Happy to. We've got forty depots and dispatch is drowning in spreadsheets.
[00:00:19] Alice Moreau: Can you walk me through how a route change reaches a driver today?
[00:00:25] Lena Ortiz: Someone calls the depot lead, the lead updates a sheet, the driver finds out later.
[00:00:38] Lena Ortiz: On a bad day we lose two or three hours per truck.
[00:00:44] Alice Moreau: What does a lost hour cost you per truck, roughly?
[00:00:49] Hank Scorpio: Call it ninety dollars once you count fuel and overtime.
[00:00:55] Alice Moreau: And who else needs to sign off on a change like this?
[00:01:01] Hank Scorpio: Our CFO, Dana, owns the budget. We set aside about eighty thousand for this in Q1.
[00:01:10] Lena Ortiz: We also looked at RouteMax last year but the integration with our TMS was a mess.
[00:01:18] Alice Moreau: That's helpful. What timeline are you working towards?
[00:01:22] Hank Scorpio: We'd like to go live before the spring peak, so a decision by the end of January.
[00:01:31] Alice Moreau: Understood. Next step on my side: I'll send over a proposal with the rollout plan by Friday.
[00:01:40] Alice Moreau: And let's set up a call next Tuesday afternoon with Dana to walk through pricing.
[00:01:47] Hank Scorpio: Works for me. Lena will send you the depot list and current volumes.
[00:01:53] Lena Ortiz: I'll get that to you tomorrow.
[00:01:57] Alice Moreau: Perfect. Any questions for me before we wrap?
[00:02:02] Hank Scorpio: How long does onboarding usually take for a fleet our size?
[00:02:08] Alice Moreau: Typically six to eight weeks, depot by depot.
[00:02:13] Hank Scorpio: Great, talk Tuesday.
"""

INITECH_DEMO = """\
Bill Lumbergh: Okay, we're all here. Joanna is joining from the data centre.
Alice Moreau: Thanks Bill. I'll keep the demo to twenty minutes and leave time for questions.
Alice Moreau: Here is the renewal dashboard with your current seat usage.
Joanna Park: How does it handle the SSO groups we sync from Okta?
Alice Moreau: Groups map to roles automatically; I'll show you the mapping screen now.
Joanna Park: Nice. What about audit logs, do we get an export?
Alice Moreau: Yes, daily exports to your bucket.
Bill Lumbergh: The pricing we saw last year was steep. Is there room on the per-seat price?
Alice Moreau: For a three-year term there is. We will put two options in front of you.
Bill Lumbergh: I need something I can take to procurement by next week.
Alice Moreau: Then the action item for me is a revised quote by Wednesday.
Joanna Park: Can we also get a sandbox for the security review?
Alice Moreau: Absolutely, I'll set that up today.
Bill Lumbergh: Let's find a time next week for a technical deep dive with my architects, about an hour.
Alice Moreau: Sounds good, I'll schedule it.
"""

TYRELL_FOLLOWUP = """\
[00:00:03] Maya Chen: Eldon, thanks for hopping on. Where did we land after the pilot?
[00:00:09] Eldon Tyrell: The vision QA caught most defects but the false positives annoyed the line managers.
[00:00:18] Maya Chen: We tuned the threshold last week; the rate dropped by half.
[00:00:24] Eldon Tyrell: That's good to hear. Budget is approved for line two, but legal wants the data terms changed.
[00:00:33] Maya Chen: I'll send the updated data processing addendum by tomorrow.
[00:00:39] Eldon Tyrell: And we are also talking to Cognex, to be transparent.
[00:00:45] Maya Chen: Appreciate that. What would make the decision easy for you?
[00:00:50] Eldon Tyrell: A fixed price for the first year and a named engineer on site.
[00:00:57] Maya Chen: Let me take that back. Can we meet again on Thursday morning to close this out?
[00:01:04] Eldon Tyrell: Thursday morning works.
"""

STANDUP = """\
Alice Moreau: Morning all, quick standup.
Bruno Keller: Pipeline review is at two, I still need the Hooli numbers.
Maya Chen: I'll update the forecast sheet after lunch.
Alice Moreau: Reminder that the CRM migration freezes edits on Friday.
Bruno Keller: Noted. Nothing else from me.
"""

UMBRELLA_DE = """\
Bruno Keller: Guten Tag Frau Ashford, danke für Ihre Zeit.
Alexia Ashford: Gerne. Wir planen die Terminplanung in drei Kliniken zu digitalisieren.
Bruno Keller: Welches Budget ist dafür vorgesehen?
Alexia Ashford: Ungefähr zwanzigtausend Euro für den Pilot.
Bruno Keller: Ich schicke Ihnen bis Freitag ein Angebot für den Pilot.
Alexia Ashford: Sehr gut, und bitte auch eine Referenz aus dem Gesundheitswesen.
"""

# key, owner, deal, contact keys attending, title, hours ago it ended, minutes long, transcript
MEETINGS = (
    (
        "globex-discovery",
        "alice",
        "globex-fleet",
        ("hank", "lena"),
        "Discovery call — Globex dispatch",
        2,
        30,
        GLOBEX_DISCOVERY,
    ),
    (
        "initech-demo",
        "alice",
        "initech-platform",
        ("bill", "joanna"),
        "Product demo — Initech renewal",
        26,
        45,
        INITECH_DEMO,
    ),
    ("tyrell-followup", "maya", "tyrell-vision", ("eldon",), "Pilot follow-up — Tyrell", 5, 20, TYRELL_FOLLOWUP),
    ("umbrella-discovery", "bruno", "umbrella-pilot", ("alexia",), "Erstgespräch Umbrella Health", 3, 25, UMBRELLA_DE),
    ("team-standup", "alice", None, (), "Sales team standup", 20, 10, STANDUP),
    ("solo-prep", "bruno", None, (), "Prep time", 1, 30, ""),
)

# key, owner, deal, contact keys, title, starts in minutes, minutes long
CALENDAR = (
    ("globex-pricing", "alice", "globex-fleet", ("hank",), "Pricing walkthrough — Globex", 75, 45),
    ("stark-exec", "bruno", "stark-grid", ("pepper", "happy"), "Exec sponsor check-in — Stark Energy", 100, 30),
    ("alice-focus", "alice", None, (), "Focus time", 60 * 20, 120),
    ("alice-lunch", "alice", None, (), "Lunch with Hooli team", 60 * 26, 60),
    ("alice-qbr", "alice", "wayne-analytics", ("lucius",), "QBR — Wayne Foods", 60 * 44, 60),
    ("bruno-1on1", "bruno", None, (), "1:1 with Maya", 60 * 22, 30),
)

# key, user, contact key (None = unknown sender), from, subject, body, hours ago
EMAILS = (
    (
        "email-globex-question",
        "alice",
        "hank",
        "Hank Scorpio <hank@globex.example>",
        "Re: Intro and next steps",
        "Hi Alice,\n\nQuick question before Tuesday: does your pricing include the driver app licences, or are "
        "those extra? Could you send me a breakdown per depot?\n\nThanks,\nHank",
        1,
    ),
    (
        "email-initech-booking",
        "alice",
        "bill",
        "Bill Lumbergh <bill@initech.example>",
        "Deep dive with architects",
        "Alice, can we find a time next week for the technical deep dive? An hour, ideally Tuesday or Wednesday "
        "afternoon. My architects are free most afternoons.\n\nBill",
        3,
    ),
    (
        "email-stark-ooo",
        "bruno",
        "pepper",
        "Pepper Potts <pepper@stark-energy.example>",
        "Automatic reply: Grid analytics",
        "Thank you for your message. I am out of the office until Monday 7 December with limited access to "
        "email. For urgent matters please contact Happy Hogan.",
        4,
    ),
    (
        "email-gmail-lead",
        "bruno",
        None,
        "Sam Rivera <sam.rivera@gmail.com>",
        "Pricing for a small team?",
        "Hello, I run a 12-person logistics startup. What would your starter plan cost us per month? Thanks, Sam",
        2,
    ),
)

# key, campaign key, from name, from email, subject, body, hours ago
CAMPAIGN_REPLIES = (
    (
        "reply-1",
        "q4-logistics",
        "Priya Shah",
        "priya@fastfreight.example",
        "Re: Cutting dispatch time",
        "This is timely, we are reviewing tools in January. Could you send a case study and a few times for a call?",
        20,
    ),
    (
        "reply-2",
        "q4-logistics",
        "Tom Becker",
        "tom@haulage.example",
        "Re: Cutting dispatch time",
        "Not interested, we built our own system.",
        18,
    ),
    (
        "reply-3",
        "q4-logistics",
        "Ana Lima",
        "ana@cargolatam.example",
        "Automatic reply",
        "Estoy fuera de la oficina hasta el lunes. I am out of office until Monday.",
        16,
    ),
    (
        "reply-4",
        "healthcare-pilot",
        "Dr. Kim",
        "kim@northclinic.example",
        "Re: Scheduling pilot",
        "Please remove me from your list.",
        12,
    ),
    (
        "reply-5",
        "healthcare-pilot",
        "Lea Weber",
        "lea@praxis-weber.example",
        "Re: Scheduling pilot",
        "Interessant! Können wir nächste Woche telefonieren? Wie sieht die Preisgestaltung aus?",
        6,
    ),
)

# key, owner, name, sent, opened, replied, bounced
CAMPAIGNS = (
    ("q4-logistics", "alice", "Q4 logistics outbound", 1200, 312, 14, 71),
    ("healthcare-pilot", "bruno", "Healthcare scheduling pilot", 400, 190, 11, 6),
)

# owner, title, due in hours, deal
TASKS = (
    ("alice", "Send Globex depot rollout plan", 6, "globex-fleet"),
    ("alice", "Confirm Initech sandbox access", -20, "initech-platform"),
    ("bruno", "Chase Hooli procurement contact", 30, "hooli-rollout"),
)
