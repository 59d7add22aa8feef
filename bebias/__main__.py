from bebias.cli import main

main()
