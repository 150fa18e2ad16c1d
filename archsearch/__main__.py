from archsearch.cli import main

main()
