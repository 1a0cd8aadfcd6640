//! Word lists the sample text is assembled from. Lists are non-empty constants, so picking from
//! them cannot fail. A few names carry accents on purpose: stored text must round-trip Unicode,
//! while e-mail addresses and domains are derived through [`ascii_slug`].

/// A place: city, country, international dialling code, top-level domain of its companies.
pub(crate) struct Place {
    pub city: &'static str,
    pub country: &'static str,
    pub dialling_code: &'static str,
    pub tld: &'static str,
}

const fn place(
    city: &'static str,
    country: &'static str,
    dialling_code: &'static str,
    tld: &'static str,
) -> Place {
    Place {
        city,
        country,
        dialling_code,
        tld,
    }
}

pub(crate) const PLACES: &[Place] = &[
    place("Seattle", "United States", "1", "com"),
    place("Chicago", "United States", "1", "com"),
    place("Austin", "United States", "1", "com"),
    place("Boston", "United States", "1", "com"),
    place("Denver", "United States", "1", "com"),
    place("Atlanta", "United States", "1", "com"),
    place("Toronto", "Canada", "1", "ca"),
    place("Vancouver", "Canada", "1", "ca"),
    place("London", "United Kingdom", "44", "co.uk"),
    place("Manchester", "United Kingdom", "44", "co.uk"),
    place("Dublin", "Ireland", "353", "ie"),
    place("Paris", "France", "33", "fr"),
    place("Lyon", "France", "33", "fr"),
    place("Berlin", "Germany", "49", "de"),
    place("München", "Germany", "49", "de"),
    place("Hamburg", "Germany", "49", "de"),
    place("Zürich", "Switzerland", "41", "ch"),
    place("Amsterdam", "Netherlands", "31", "nl"),
    place("Brussels", "Belgium", "32", "be"),
    place("Madrid", "Spain", "34", "es"),
    place("Barcelona", "Spain", "34", "es"),
    place("Lisbon", "Portugal", "351", "pt"),
    place("Milan", "Italy", "39", "it"),
    place("Vienna", "Austria", "43", "at"),
    place("Stockholm", "Sweden", "46", "se"),
    place("Copenhagen", "Denmark", "45", "dk"),
    place("Oslo", "Norway", "47", "no"),
    place("Helsinki", "Finland", "358", "fi"),
    place("Warsaw", "Poland", "48", "pl"),
    place("Prague", "Czechia", "420", "cz"),
    place("São Paulo", "Brazil", "55", "com.br"),
    place("Mexico City", "Mexico", "52", "com.mx"),
    place("Sydney", "Australia", "61", "com.au"),
    place("Melbourne", "Australia", "61", "com.au"),
    place("Auckland", "New Zealand", "64", "co.nz"),
    place("Singapore", "Singapore", "65", "sg"),
    place("Tokyo", "Japan", "81", "jp"),
    place("Bengaluru", "India", "91", "in"),
    place("Cape Town", "South Africa", "27", "co.za"),
    place("Dubai", "United Arab Emirates", "971", "ae"),
];

pub(crate) const COMPANY_PREFIXES: &[&str] = &[
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Adventure",
    "Blue Yonder",
    "Coho",
    "Alpine",
    "Litware",
    "Proseware",
    "Wide World",
    "Tailspin",
    "Woodgrove",
    "Lucerne",
    "Fourth Coffee",
    "Humongous",
    "Margie's",
    "Trey",
    "Wingtip",
    "Graphic Design",
    "City Power",
    "Silverline",
    "Redwood",
    "Summit",
    "Harbor",
    "Evergreen",
    "Granite",
    "Ironbridge",
    "Lakeside",
    "Meridian",
    "Oakridge",
    "Pinnacle",
    "Riverbend",
    "Sterling",
    "Crescent",
    "Horizon",
    "Keystone",
    "Bluewater",
    "Copperfield",
    "Highland",
    "Brightstone",
];

pub(crate) const COMPANY_CORES: &[&str] = &[
    "Traders",
    "Logistics",
    "Works",
    "Systems",
    "Foods",
    "Energy",
    "Health",
    "Partners",
    "Motors",
    "Textiles",
    "Software",
    "Analytics",
    "Consulting",
    "Manufacturing",
    "Airlines",
    "Bank",
    "Insurance",
    "Pharmaceuticals",
    "Studios",
    "Construction",
    "Electronics",
    "Farms",
    "Outfitters",
    "Hotels",
    "Shipping",
    "Labs",
    "Media",
    "Robotics",
    "Supplies",
    "Solutions",
];

pub(crate) const COMPANY_SUFFIXES: &[&str] = &[
    "Inc.", "Ltd", "LLC", "GmbH", "S.A.", "B.V.", "AG", "plc", "Group", "Co.", "AB", "Corp.",
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Paul",
    "Ashley",
    "Steven",
    "Emily",
    "Andrew",
    "Michelle",
    "Joshua",
    "Amanda",
    "Kenji",
    "Yuki",
    "Priya",
    "Arjun",
    "Sofia",
    "Mateo",
    "Lucía",
    "Hugo",
    "Chloé",
    "Léa",
    "Jörg",
    "Anja",
    "Lars",
    "Ingrid",
    "Mei",
    "Wei",
    "Fatima",
    "Omar",
    "Aoife",
    "Seán",
    "Zoë",
    "Noah",
    "Olivia",
    "Liam",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Nguyen",
    "Hill",
    "Adams",
    "Baker",
    "Nakamura",
    "Tanaka",
    "Patel",
    "Sharma",
    "Müller",
    "Schmidt",
    "Schneider",
    "Dubois",
    "Lefèvre",
    "Rossi",
    "Bianchi",
    "Jansen",
    "de Vries",
    "Andersson",
    "Johansson",
    "Nielsen",
    "Kowalski",
    "Novák",
    "O'Brien",
    "Murphy",
    "Silva",
    "Santos",
    "Chen",
    "Wang",
];

pub(crate) const JOB_TITLES: &[&str] = &[
    "Chief Executive Officer",
    "Chief Financial Officer",
    "Chief Technology Officer",
    "VP of Sales",
    "VP of Marketing",
    "Head of Procurement",
    "Purchasing Manager",
    "Operations Manager",
    "IT Director",
    "IT Administrator",
    "Account Manager",
    "Office Manager",
    "Sales Representative",
    "Marketing Specialist",
    "Project Manager",
    "Product Owner",
    "Software Engineer",
    "Business Analyst",
    "Controller",
    "Facilities Manager",
];

pub(crate) const FREE_MAIL_DOMAINS: &[&str] = &[
    "outlook.com",
    "gmail.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "gmx.net",
];

/// Products sold in opportunities and asked about by leads.
pub(crate) const PRODUCTS: &[&str] = &[
    "Office Chairs",
    "Standing Desks",
    "Laptops",
    "Docking Stations",
    "Monitors",
    "Printers",
    "Coffee Machines",
    "Support Contract",
    "Cloud Storage Plan",
    "Software Licenses",
    "Network Switches",
    "Security Cameras",
    "Delivery Vans",
    "Forklifts",
    "Solar Panels",
    "Training Days",
    "Consulting Hours",
    "Maintenance Kits",
    "Safety Equipment",
    "Conference Phones",
];

pub(crate) const TASK_SUBJECTS: &[&str] = &[
    "Call back about the quote",
    "Send the revised proposal",
    "Schedule a product demo",
    "Follow up on the overdue invoice",
    "Prepare the contract renewal",
    "Confirm the delivery date",
    "Book the on-site visit",
    "Review the support tickets",
    "Introduce the new account manager",
    "Collect feedback after the installation",
    "Check the credit limit",
    "Update the billing address",
    "Send the training schedule",
    "Ask for a reference",
];

/// Sentences memos are made of (each well under 200 characters, so a memo of a few stays far
/// below `MaxLength` 2000).
pub(crate) const SENTENCES: &[&str] = &[
    "Met at the regional trade show and asked for a follow-up call.",
    "Prefers to be contacted in the morning.",
    "Budget for next year is expected to be approved in the first quarter.",
    "Currently evaluating two competitors on price and delivery time.",
    "The purchasing department requires three quotes for every order.",
    "Very satisfied with the last delivery; mentioned a possible expansion.",
    "Asked for a discount on volume orders above 500 units.",
    "Payment terms were renegotiated to 45 days.",
    "Decision maker is the head of operations, not the IT department.",
    "Opening a new branch office later this year.",
    "Had issues with the onboarding process; resolved by support.",
    "Interested in a multi-year agreement if the price is fixed.",
    "Needs the documentation in German and French.",
    "Invoices must reference the purchase order number.",
    "Long-standing customer, renewed every year since the first order.",
    "Requested a call with a technical specialist before signing.",
    "Sent the brochure and the price list by e-mail.",
    "The warehouse is closed on Fridays; plan deliveries accordingly.",
    "Considering moving their data to the cloud next quarter.",
    "Referred by an existing customer in the same industry.",
    "Main contact is on parental leave until the end of the month.",
    "Security review passed; legal is checking the contract terms.",
];

/// Lowercase ASCII letters and digits of `s`, with common accented letters folded to their base
/// letter and everything else dropped: the local part of an e-mail address or a domain label.
pub(crate) fn ascii_slug(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| {
            let c = match c {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
                'ç' => 'c',
                'è' | 'é' | 'ê' | 'ë' => 'e',
                'ì' | 'í' | 'î' | 'ï' => 'i',
                'ñ' => 'n',
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
                'ù' | 'ú' | 'û' | 'ü' => 'u',
                c => c,
            };
            c.is_ascii_alphanumeric().then_some(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_fold_accents_and_drop_punctuation() {
        assert_eq!(ascii_slug("Lefèvre"), "lefevre");
        assert_eq!(ascii_slug("O'Brien"), "obrien");
        assert_eq!(ascii_slug("de Vries"), "devries");
        assert_eq!(ascii_slug("Zoë"), "zoe");
        assert_eq!(ascii_slug("Margie's Travel"), "margiestravel");
    }

    #[test]
    fn every_name_has_a_non_empty_slug() {
        for name in FIRST_NAMES
            .iter()
            .chain(LAST_NAMES)
            .chain(COMPANY_PREFIXES)
            .chain(COMPANY_CORES)
        {
            assert!(!ascii_slug(name).is_empty(), "{name}");
        }
    }
}
