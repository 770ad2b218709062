from policytag.cli import main

main()
