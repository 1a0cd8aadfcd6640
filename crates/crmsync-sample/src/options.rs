//! Option sets of the sample entities, with Dataverse's own values and labels.
//!
//! The metadata ([`crate::crm_entities`]) and the row generators read the same tables, so a
//! generated option value always exists in its attribute's option set.

/// `account.industrycode` and `lead.industrycode`.
pub(crate) const INDUSTRY: &[(i32, &str)] = &[
    (1, "Accounting"),
    (2, "Agriculture and Non-petrol Natural Resource Extraction"),
    (3, "Broadcasting Printing and Publishing"),
    (4, "Brokers"),
    (5, "Building Supply Retail"),
    (6, "Business Services"),
    (7, "Consulting"),
    (8, "Consumer Services"),
    (9, "Design, Direction and Creative Management"),
    (10, "Distributors, Dispatchers and Processors"),
    (11, "Doctor's Offices and Clinics"),
    (12, "Durable Manufacturing"),
    (13, "Eating and Drinking Places"),
    (14, "Entertainment Retail"),
    (15, "Equipment Rental and Leasing"),
    (16, "Financial"),
    (17, "Food and Tobacco Processing"),
    (18, "Inbound Capital Intensive Processing"),
    (19, "Inbound Repair and Services"),
    (20, "Insurance"),
    (21, "Legal Services"),
    (22, "Non-Durable Merchandise Retail"),
    (23, "Outbound Consumer Service"),
    (24, "Petrochemical Extraction and Distribution"),
    (25, "Service Retail"),
    (26, "SIG Affiliations"),
    (27, "Social Services"),
    (28, "Special Outbound Trade Contractors"),
    (29, "Specialty Realty"),
    (30, "Transportation"),
    (31, "Utility Creation and Distribution"),
    (32, "Vehicle Retail"),
    (33, "Wholesale"),
];

/// `contact.preferredcontactmethodcode`.
pub(crate) const CONTACT_METHOD: &[(i32, &str)] =
    &[(1, "Any"), (2, "Email"), (3, "Phone"), (4, "Fax"), (5, "Mail")];

/// `opportunity.opportunityratingcode` and `lead.leadqualitycode`.
pub(crate) const RATING: &[(i32, &str)] = &[(1, "Hot"), (2, "Warm"), (3, "Cold")];

/// `opportunity.salesstagecode`; `stepname` carries the matching step label.
pub(crate) const SALES_STAGE: &[(i32, &str)] =
    &[(0, "Qualify"), (1, "Develop"), (2, "Propose"), (3, "Close")];

/// `opportunity.purchasetimeframe`.
pub(crate) const PURCHASE_TIMEFRAME: &[(i32, &str)] = &[
    (0, "Immediate"),
    (1, "This Quarter"),
    (2, "Next Quarter"),
    (3, "This Year"),
    (4, "Unknown"),
];

/// `lead.leadsourcecode`.
pub(crate) const LEAD_SOURCE: &[(i32, &str)] = &[
    (1, "Advertisement"),
    (2, "Employee Referral"),
    (3, "External Referral"),
    (4, "Partner"),
    (5, "Public Relations"),
    (6, "Seminar"),
    (7, "Trade Show"),
    (8, "Web"),
    (9, "Word of Mouth"),
    (10, "Other"),
];

/// `task.prioritycode`.
pub(crate) const PRIORITY: &[(i32, &str)] = &[(0, "Low"), (1, "Normal"), (2, "High")];
