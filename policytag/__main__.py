from policytag.cli.main import main

main()
