"""The `gankit` commands, a module per group: each `add(sub)` declares its subcommands' arguments
and a function per subcommand checks them, calls the library and prints what it wrote. Heavy
imports stay inside those functions, so `gankit --help` answers at once."""
