//! Prints `path<TAB>o200k<TAB>cl100k` for each file named on the command line (used to calibrate the `claude` factor).

use skillbook::tokenize::Tokenizer;

fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read_to_string(&path) {
            Ok(text) => println!(
                "{path}\t{}\t{}",
                Tokenizer::O200k.count(&text),
                Tokenizer::Cl100k.count(&text)
            ),
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
