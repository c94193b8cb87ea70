"""Reference code sets of the real collections (facts from DOMAIN.md, not tunable rates)."""

import numpy as np


def _ranges(*spans: tuple[int, int]) -> list[int]:
    return [code for low, high in spans for code in range(low, high + 1)]


# Post-1998 LA numbers, the digits 2-4 of a UPN (DOMAIN.md section 6).
LA_CODES: list[int] = _ranges(
    (201, 213), (301, 320), (330, 336), (340, 344), (350, 359), (370, 373), (380, 384),
    (390, 394), (420, 420), (800, 803), (805, 808), (810, 813), (815, 816), (820, 823),
    (825, 826), (830, 831), (835, 841), (845, 846), (850, 852), (855, 857), (860, 861),
    (865, 896), (908, 909), (916, 916), (919, 919), (921, 921), (925, 926), (928, 929),
    (931, 931), (933, 933), (935, 938), (940, 943),
)

ETHNIC_CODES = [
    "WBRI", "WIRI", "WOTH", "WIRT", "WROM", "MWBC", "MWBA", "MWAS", "MOTH", "AIND",
    "APKN", "ABAN", "AOTH", "BCRB", "BAFR", "BOTH", "CHNE", "OOTH", "REFU", "NOBT",
]
MIXED_CODES = ["MWBC", "MWBA", "MWAS", "MOTH"]

# School census extended ethnicity codes that roll up to a main code (a few, for realism).
EXTENDED_ETHNICITY = {
    "WBRI": ["WBRI", "WENG", "WSCO", "WWEL", "WCOR"],
    "BAFR": ["BAFR", "BSOM", "BNGN", "BGHA"],
    "WOTH": ["WOTH", "WPOL", "WALB", "WTUR"],
    "AOTH": ["AOTH", "AAFR", "ASNL"],
}

# UPN check letters, indexed by the weighted sum mod 23.
UPN_CHECK_ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ"

# 903 placement codes used by the generator.
FOSTER_PLACEMENTS = ["U1", "U3", "U4", "U6"]
FFA_PLACEMENTS = ["U2", "U5"]
OTHER_PLACEMENTS = ["K2", "R1", "R2", "P1", "S1", "H5", "Z1"]
ADOPTION_PLACEMENTS = ["A3", "A4", "A5", "A6"]
LEGAL_STATUS_START = {"V2": 0.45, "C1": 0.30, "C2": 0.15, "L2": 0.05, "J1": 0.05}
LEGAL_STATUS_LATER = {"C2": 0.6, "C1": 0.2, "V2": 0.2}
REFERRAL_SOURCES = ["1A", "1B", "1C", "2A", "2B", "3A", "3B", "3C", "3D", "3E", "4", "5A",
                    "5B", "5C", "5D", "6", "7", "8", "9", "10"]
PRIMARY_NEED = ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9", "N0"]
PRIMARY_NEED_WEIGHTS = np.array([0.55, 0.04, 0.02, 0.17, 0.12, 0.02, 0.01, 0.04, 0.01, 0.02])
CATEGORY_OF_ABUSE = ["NEG", "PHY", "SAB", "EMO", "MUL"]
DISABILITIES = ["NONE", "MOB", "HAND", "PC", "INC", "COMM", "LD", "HEAR", "VIS", "BEH", "CON",
                "AUT", "DDA"]

# ASG project convention (DOMAIN.md section 5): gender codes and adopter characteristics.
ASG_GENDER = {"M": "Male", "F": "Female", "U": "Other"}
RELIGIONS = ["No religion", "Christian", "Muslim", "Hindu", "Sikh", "Jewish", "Buddhist",
             "Other", "Not stated"]
RELIGION_WEIGHTS = np.array([0.45, 0.38, 0.05, 0.02, 0.01, 0.01, 0.01, 0.02, 0.05])

# School census: previously looked after arrangements (project convention codes).
PLAA_BY_REASON = {"E11": "ADP", "E12": "ADP", "E45": "SGO", "E41": "CAO"}

# Postcode areas used for LA postcodes (real UK area letters).
POSTCODE_AREAS = [
    "AL", "B", "BA", "BB", "BD", "BH", "BL", "BN", "BR", "BS", "CA", "CB", "CF", "CH", "CM",
    "CO", "CR", "CT", "CV", "CW", "DA", "DE", "DH", "DL", "DN", "DT", "DY", "E", "EC", "EN",
    "EX", "FY", "GL", "GU", "HA", "HD", "HG", "HP", "HR", "HU", "HX", "IG", "IP", "KT", "L",
    "LA", "LE", "LN", "LS", "LU", "M", "ME", "MK", "N", "NE", "NG", "NN", "NR", "NW", "OL",
    "OX", "PE", "PL", "PO", "PR", "RG", "RH", "RM", "S", "SE", "SG", "SK", "SL", "SM", "SN",
    "SO", "SP", "SR", "SS", "ST", "SW", "TA", "TF", "TN", "TQ", "TR", "TS", "TW", "UB", "W",
    "WA", "WC", "WD", "WF", "WN", "WR", "WS", "WV", "YO",
]
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters used in the inward unit
