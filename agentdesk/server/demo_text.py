"""Words for the demo team: customers, people, and what they write about.

Kept apart from the generator so the logic in :mod:`.demo` reads without pages of strings. All
names are invented; domains use the reserved ``example.com`` so no demo email can reach anyone.
"""

from __future__ import annotations

#: Customer organisations by plan key: small businesses on the free plan, larger ones above.
ORGANISATIONS: dict[str, tuple[str, ...]] = {
    "basic": (
        "Harbor Point Dental",
        "Bluegrass Roofing Co.",
        "Cedar & Vine Bistro",
        "Maple Street Bakery",
        "Sunrise Yoga Studio",
        "Keystone Plumbing",
        "Little Acorn Daycare",
        "Riverbend Auto Repair",
        "Golden Gate Florist",
        "Pinecrest Veterinary Clinic",
        "Copper Kettle Cafe",
        "Summit Landscaping",
    ),
    "standard": (
        "Brightline Accounting",
        "Oakridge Property Management",
        "Lakeside Family Law",
        "Meridian Physical Therapy",
        "Northgate Realty Group",
        "Tidewater Marine Supply",
        "Evergreen Home Health",
        "Silver Lake Insurance Agency",
        "Crescent City Movers",
        "Prairie Wind Solar",
    ),
    "premium": (
        "Atlas Fitness Clubs",
        "Bayview Orthodontics",
        "Cobalt Creative Agency",
        "Driftwood Hotels",
        "Fairhaven Senior Living",
        "Granite Peak Outfitters",
        "Ironwood Construction",
        "Juniper Health Partners",
    ),
    "enterprise": (
        "Northwind Logistics",
        "Pioneer Valley Health System",
        "Redwood Financial Group",
        "Sterling University",
        "Vantage Retail Holdings",
        "Westbrook Manufacturing",
    ),
}

FIRST_NAMES: tuple[str, ...] = (
    "Ann",
    "Marcus",
    "Olivia",
    "Daniel",
    "Grace",
    "Hector",
    "Ivy",
    "Jamal",
    "Karen",
    "Leo",
    "Monica",
    "Nathan",
    "Paula",
    "Quentin",
    "Rosa",
    "Steven",
    "Tanya",
    "Umar",
    "Valerie",
    "Walter",
    "Yara",
    "Zach",
    "Bianca",
    "Carlos",
    "Deborah",
    "Elliot",
    "Fatima",
    "Gavin",
    "Helena",
    "Isaac",
    "Julia",
    "Kevin",
    "Laura",
    "Miguel",
    "Nora",
    "Oscar",
    "Patrice",
    "Rachel",
    "Simon",
    "Teresa",
    "Victor",
    "Wendy",
    "Abigail",
    "Brandon",
    "Chloe",
    "Derek",
    "Emily",
    "Frank",
    "Gloria",
    "Henry",
    "Irene",
    "Joseph",
    "Kayla",
    "Lucas",
    "Megan",
    "Noah",
)

LAST_NAMES: tuple[str, ...] = (
    "Lee",
    "Brooks",
    "Nguyen",
    "Garcia",
    "Miller",
    "Alvarez",
    "Chen",
    "Washington",
    "Schmidt",
    "Rossi",
    "Patel",
    "Kowalski",
    "O'Brien",
    "Dubois",
    "Santos",
    "Novak",
    "Hughes",
    "Farouk",
    "Jensen",
    "Murphy",
    "Haddad",
    "Thompson",
    "Silva",
    "Reyes",
    "Kim",
    "Foster",
    "Ahmed",
    "Bennett",
    "Larsen",
    "Morales",
    "Price",
    "Sullivan",
    "Tran",
    "Walsh",
    "Young",
    "Castillo",
    "Diaz",
    "Ellis",
    "Fischer",
    "Gordon",
    "Hayes",
    "Ibrahim",
    "Jordan",
    "Kaplan",
    "Lopez",
    "Mendes",
    "Nakamura",
    "Ortiz",
    "Parker",
    "Quinn",
    "Russo",
    "Stewart",
    "Turner",
    "Vargas",
)

#: What the coordinator calls each severity tier (seed 002).
TIER_LABELS: dict[int, str] = {
    1: "production down",
    2: "production degraded",
    3: "minor issue or how-to question",
    4: "cosmetic issue or request",
}

#: Subjects by level and by the tier the coordinator will assess. Level 2 covers the API, single
#: sign-on, scripting and integrations (seed 003); Level 1 everything else.
SUBJECTS: dict[str, dict[int, tuple[str, ...]]] = {
    "L1": {
        1: (
            "Our booking page is down for all customers",
            "Checkout fails with an error on every order",
            "Nobody on our team can log in",
            "Website shows a blank page since the last update",
            "Payment form rejects every card",
        ),
        2: (
            "Pages loading very slowly since this morning",
            "Contact form submissions are not arriving",
            "Some customers see the old prices",
            "Email notifications delayed by several hours",
            "Image gallery not loading on mobile",
        ),
        3: (
            "How do I add a new user to our account?",
            "How can we export our contact list to CSV?",
            "Report filter does not remember the date range",
            "Where do I change the reply-to address on invoices?",
            "Calendar view starts the week on the wrong day",
            "How do I set up an automatic reminder email?",
        ),
        4: (
            "Typo in the footer of our landing page",
            "Logo looks blurry on the login screen",
            "Request: dark mode for the dashboard",
            "Button colours do not match our brand guide",
            "Spelling mistake in the welcome email template",
        ),
    },
    "L2": {
        1: (
            "SSO login failing for all staff (SAML assertion error)",
            "API returning 500 errors for every request",
            "Payment webhook stopped firing: orders not confirmed",
            "CRM sync halted, production orders missing",
        ),
        2: (
            "API rate limit errors (429) during the nightly import",
            "Zapier integration drops about a third of new leads",
            "SCIM provisioning is not creating new accounts",
            "Webhook deliveries delayed by up to an hour",
        ),
        3: (
            "How do I paginate the contacts API endpoint?",
            "Custom script cannot read the tag field",
            "Question about OAuth token refresh for our integration",
            "Single sign-on: how to map the department attribute?",
        ),
        4: (
            "API docs: the bulk update example has a typo",
            "Feature request: a webhook for deleted records",
            "SDK README links to an outdated version",
        ),
    },
}

DETAILS: tuple[str, ...] = (
    "It started around lunchtime today.",
    "We noticed it first thing this morning.",
    "We tried a different browser and cleared the cache, same result.",
    "This affects most of our front-desk staff.",
    "Screenshots attached.",
    "Please call me if you need more details.",
    "It worked fine last week.",
    "Our customers have started to complain.",
    "We have not changed anything on our side.",
    "Happy to do a screenshare if that helps.",
)

NEXT_STEPS: tuple[str, ...] = (
    "I'm reproducing the problem on our side and will update you within the hour",
    "I'd like a quick screenshare to see it happening; I'll call you shortly",
    "I've passed the logs to our engineers and will report back today",
    "please try the steps below and let me know whether they help",
    "I'm checking your account settings now and will follow up by email",
)

QUESTIONS: tuple[str, ...] = (
    "Could you send us a screenshot of the error and roughly when it happened?",
    "Could you tell us which user accounts are affected?",
    "Could you try the workaround below and let us know whether it helps?",
    "Which browser and version are you using?",
    "Could you forward one of the emails that did not arrive, with its headers?",
)

CUSTOMER_ANSWERS: tuple[str, ...] = (
    "Screenshot attached; it happened at about 10:15.",
    "It's all of the accounts created after last Monday.",
    "The workaround helps, thanks, but we still need a fix.",
    "Chrome, latest version, on Windows 11.",
    "Forwarded one of them just now.",
)

FIXES: tuple[str, ...] = (
    "the fix is live and everything works again on our side",
    "we've corrected the setting on your account",
    "here are the steps to do it, with a short video",
    "the corrected text is now live",
    "our engineers deployed a fix and we've confirmed it with your test account",
    "we've re-sent the missing items and they are all in your account now",
)

NOTES: tuple[str, ...] = (
    "Reproduced on staging.",
    "Checked the logs: the errors start right after the customer's theme change.",
    "Asked Level 2 for a second opinion.",
    "Customer confirmed the workaround works for now.",
    "Same root cause as last month's ticket for this customer.",
    "Waiting for the engineering fix to be deployed.",
    "Called the customer; voicemail, sent an email instead.",
)

#: Billable 1-on-1 work (seed 001's list of what counts as billable time).
BILLABLE_WORK: tuple[str, ...] = (
    "Kickoff call",
    "Project management",
    "Familiarising myself with the account",
    "Account setup",
    "Monitoring",
    "Research",
    "Testing",
    "Status update call",
)
