from loopwise.utils.text import csv_cell, printable


def test_printable_escapes_terminal_control_sequences():
    assert printable("loss") == "loss"
    assert printable("a\x1b]0;owned\x07b") == "a\\x1b]0;owned\\x07b"
    assert printable("x\x9by") == "x\\x9by"  # C1 CSI
    assert printable(3) == "3"


def test_csv_cell_neutralises_formulas_but_keeps_plain_text():
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("+1") == "'+1" and csv_cell("-x") == "'-x" and csv_cell("@a") == "'@a"
    assert csv_cell("val_loss") == "val_loss"
    assert csv_cell("a\nb") == "a\\x0ab"
