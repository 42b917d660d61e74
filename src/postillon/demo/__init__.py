"""Demo data: a fashion and sports shop's contacts and a year of their behaviour."""
